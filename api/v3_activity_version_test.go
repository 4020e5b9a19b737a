package api_test

import (
	"encoding/json"
	"testing"
)

// TestV3ActivityKeyVersion: a crypto call's usage-log entry names the key
// version it used (keyVersion), across a rotation and for decrypt of an
// older ciphertext; other calls have keyVersion null.
func TestV3ActivityKeyVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "versioned", "AES256")
	k3 := "/kms/v3/keys/" + tag
	_, b := e.raw("POST", k3+"/encrypt", `{"plaintext":"aGk="}`)
	ct1 := field(t, b, "ciphertext")
	status, b := e.raw("POST", k3+"/versions", "")
	mustStatus(t, "rotate", 201, status, b)
	status, b = e.raw("POST", k3+"/encrypt", `{"plaintext":"aGk="}`)
	mustStatus(t, "encrypt v2", 200, status, b)
	status, b = e.raw("POST", k3+"/decrypt", `{"ciphertext":"`+ct1+`"}`)
	mustStatus(t, "decrypt v1", 200, status, b)

	status, b = e.raw("GET", k3+"/activities?pageSize=50", "")
	mustStatus(t, "activities", 200, status, b)
	var got struct {
		Activities []struct {
			ActionCode string `json:"actionCode"`
			KeyVersion *int   `json:"keyVersion"`
		} `json:"activities"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		action  string
		version int // 0: null
	}
	want := []entry{{"Decrypt", 1}, {"Encrypt", 2}, {"RotateKey", 0}, {"Encrypt", 1}, {"CreateKey", 1}}
	if len(got.Activities) != len(want) {
		t.Fatalf("got %d entries %s, want %d", len(got.Activities), b, len(want))
	}
	for i, a := range got.Activities {
		v := 0
		if a.KeyVersion != nil {
			v = *a.KeyVersion
		}
		if (entry{a.ActionCode, v}) != want[i] {
			t.Errorf("entry %d: got %s keyVersion %d, want %s %d", i, a.ActionCode, v, want[i].action, want[i].version)
		}
	}
}
