package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// FuzzActivityQueryV3 sends arbitrary query strings to listKeyActivities,
// signed, through the server's handler: the answer is 200, 400 or 414 (a
// request line over 4 KiB), never a 500 or a panic; a 200 lists only
// entries that pass every filter of the query, newest first, within the
// page size; 414 has no body.
func FuzzActivityQueryV3(f *testing.F) {
	e := newEnv(f)
	tag := newV3Key(f, e, "fuzzed-log", "AES256")
	k := "/kms/v3/keys/" + tag
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/acl", `{"enabled":true}`},
		{"POST", "/acl/add-allowed-ips", `{"allowedIps":["127.0.0.1"]}`},
		{"POST", "/acl/remove-allowed-ips", `{"allowedIps":["10.0.0.1"]}`},
		{"POST", "/issue-tokens", ""},
		{"POST", "/activate-token-generator", ""},
	} {
		e.raw(c.method, k+c.path, c.body)
	}
	for _, q := range []string{
		"", "pageNo=0&pageSize=1", "pageSize=200", "pageSize=0", "pageNo=-1", "pageNo=2147483647&pageSize=200",
		"actionCode=AddAclRule&actionCode=EnableIpAcl", "resultCode=FAIL", "requestType=SYSTEM",
		"requestorIp=127.0.0.1&resultCode=SUCCESS", "requestorId=", "actionCode=%00", "actionCode=%zz",
		"fromDateTime=2026-11-27T00:00:00Z", "toDateTime=2026-11-27T09:00:00.000+09:00", "fromDateTime=2026-13-01T00:00:00Z",
		"fromDateTime=9999-12-31T23:59:59Z&toDateTime=0001-01-01T00:00:00Z", "pageSize=1e1", ";", "a=b&&&=",
	} {
		f.Add(q)
	}
	h := e.srv.Config.Handler
	cr := e.creds[1]
	f.Fuzz(func(t *testing.T, rawQuery string) {
		target := k + "/activities?" + rawQuery
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = rawQuery
		r.URL.Path = k + "/activities"
		r.RequestURI = target
		sigv2.SignRequest(r, cr.AccessKey, []byte(cr.SecretKey), e.clk.Now())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.Bytes()
		switch w.Code {
		case 200:
		case 400, 401, 404:
			return // refused (401: a query that does not survive signing as sent)
		case 414:
			if len(body) != 0 || len("GET ")+len(target) <= 4096 {
				t.Fatalf("414 for a line of %d bytes with body %q", len("GET ")+len(target), body)
			}
			return
		default:
			t.Fatalf("query %q: status %d %s", rawQuery, w.Code, body)
		}
		q, _ := url.ParseQuery(rawQuery)
		var got struct {
			Activities []struct {
				ActivityDateTime string
				ActionCode       string
				ResultCode       string
				RequestType      string
				RequestorID      *string
				RequestorIP      *string
			} `json:"activities"`
			PageSize int `json:"pageSize"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("query %q: %v: %s", rawQuery, err, body)
		}
		if len(got.Activities) > got.PageSize {
			t.Fatalf("query %q: %d items on a page of %d", rawQuery, len(got.Activities), got.PageSize)
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		var last time.Time
		for i, a := range got.Activities {
			for name, v := range map[string]string{"actionCode": a.ActionCode, "resultCode": a.ResultCode,
				"requestType": a.RequestType, "requestorId": str(a.RequestorID), "requestorIp": str(a.RequestorIP)} {
				if vs := q[name]; len(vs) > 0 && !slices.Contains(vs, v) {
					t.Fatalf("query %q: item %d has %s %q", rawQuery, i, name, v)
				}
			}
			at, err := time.Parse(time.RFC3339, a.ActivityDateTime)
			if err != nil || (i > 0 && at.After(last)) {
				t.Fatalf("query %q: item %d at %q, after %v", rawQuery, i, a.ActivityDateTime, last)
			}
			last = at
		}
	})
}
