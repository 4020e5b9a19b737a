package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nkms/nkms/client"
)

// TestSuccessBodyBytes pins the exact bytes of success bodies, which the
// golden files (compared after re-indenting) do not: the envelope is what
// encoding/json makes of {"code","msg" (1.0 only),"data"}, with one newline
// after it, whatever shape the data has.
func TestSuccessBodyBytes(t *testing.T) {
	e := newEnv(t)
	k, err := e.client(1).CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "bytes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	type v2Body struct {
		Code string `json:"code"`
		Data any    `json:"data"`
	}
	type v1Body struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
		Data any    `json:"data"`
	}
	for _, tc := range []struct {
		name, path, body, field string
		v1                      bool
	}{
		{"2.0 one", "/kms/v1/keys/" + k.KeyTag + "/encrypt", `{"plaintext":"AAAA"}`, "ciphertext", false},
		{"2.0 list", "/kms/v1/keys/" + k.KeyTag + "/encrypt", `{"plaintext":["AAAA","PD4m"]}`, "ciphertext", false},
		{"1.0 one", "/keys/v2/" + k.KeyTag + "/encrypt", `{"plaintext":"AAAA"}`, "ciphertext", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, got := e.raw("POST", tc.path, tc.body)
			if status != 200 {
				t.Fatalf("got %d %s, want 200", status, got)
			}
			// Decode the data, then make the body it should be byte for byte.
			var parsed struct {
				Data map[string]json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(got, &parsed); err != nil {
				t.Fatalf("body %q: %v", got, err)
			}
			var data any
			if err := json.Unmarshal(parsed.Data[tc.field], &data); err != nil {
				t.Fatal(err)
			}
			var want []byte
			if tc.v1 {
				want, err = json.Marshal(v1Body{Code: "SUCCESS", Data: map[string]any{tc.field: data}})
			} else {
				want, err = json.Marshal(v2Body{Code: "SUCCESS", Data: map[string]any{tc.field: data}})
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if string(got) != string(want) {
				t.Errorf("got body\n%q\nwant\n%q", got, want)
			}
		})
	}
}
