package api_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzUpdateKeyBody sends arbitrary merge-patch bodies to the three PATCH
// routes of 3.0 (updateKey, updateKeyRotation, updateKeyVersion, chosen by
// which): the answer is never a 500 and always a D9 status with a D9 body;
// a body that is an object with none of the route's members (such as {})
// changes nothing and answers what a read answers; a refused body changes
// nothing either.
func FuzzUpdateKeyBody(f *testing.F) {
	for _, seed := range []string{
		`{}`, ` { } `, `{"keyName":null}`, `{"memo":null}`, `{"status":"DISABLED"}`, `{"status":"ENABLED"}`,
		`{"keyName":"other","memo":"m <i>x</i> 😀"}`, `{"keyName":"K-AES"}`, `{"memo":""}`, `{"memo":5}`,
		`{"enabled":false}`, `{"enabled":true,"periodDays":7}`, `{"enabled":false,"periodDays":7}`, `{"periodDays":1e1}`,
		`{"periodDays":30.0}`, `{"periodDays":"30"}`, `{"periodDays":-1}`, `{"periodDays":99999999999}`,
		`null`, `[]`, `"x"`, `1`, `{"a":{"b":[1,2,{"c":null}]}}`, "{\"memo\":\"\xff\"}", `{"memo":"a","memo":null}`,
		`{"status":"REVOKED"}`, `{`, `{"keyName":"abc"`, strings.Repeat(`{"a":`, 200),
	} {
		for which := range uint8(3) {
			f.Add(which, seed)
		}
	}
	e := newEnv(f)
	tag := e.kv3Create(kv3AES)
	if s, b := e.kv3("POST", "/kms/v3/keys/"+tag+"/versions", "", ""); s != 201 {
		f.Fatalf("createKeyVersion: HTTP %d %s", s, b)
	}
	routes := []struct {
		patch, read string
		members     []string
	}{
		{"/kms/v3/keys/" + tag, "/kms/v3/keys/" + tag, []string{"keyName", "memo", "status"}},
		{"/kms/v3/keys/" + tag + "/rotation", "/kms/v3/keys/" + tag + "/rotation", []string{"enabled", "periodDays"}},
		{"/kms/v3/keys/" + tag + "/versions/1", "/kms/v3/keys/" + tag + "/versions/1", []string{"status"}},
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		e.t = t
		rt := routes[int(which)%len(routes)]
		_, before := e.kv3("GET", rt.read, "", "")
		status, b := e.kv3("PATCH", rt.patch, body, kv3Merge)
		switch status {
		case 200:
		case 400, 409:
			var eb struct {
				Error struct{ ErrorCode, Message string }
			}
			if err := json.Unmarshal(b, &eb); err != nil || eb.Error.ErrorCode == "" || eb.Error.Message == "" {
				t.Fatalf("HTTP %d with body %s", status, b)
			}
			if _, after := e.kv3("GET", rt.read, "", ""); !bytes.Equal(after, before) {
				t.Fatalf("refused %q (%s) changed %s to %s", body, b, before, after)
			}
			return
		case 413: // over the body limit
			return
		default:
			t.Fatalf("PATCH %s %q: HTTP %d %s", rt.patch, body, status, b)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil && strings.TrimSpace(body) != "" {
			t.Fatalf("accepted %q, which is not a JSON object: %s", body, b)
		}
		for _, name := range rt.members {
			if _, ok := m[name]; ok {
				return // a change: checked by the other tests
			}
		}
		if !bytes.Equal(b, before) {
			t.Fatalf("no-op %q answered %s, a read %s", body, b, before)
		}
		if _, after := e.kv3("GET", rt.read, "", ""); !bytes.Equal(after, before) {
			t.Fatalf("no-op %q changed %s to %s", body, before, after)
		}
	})
}
