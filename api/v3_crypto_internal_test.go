package api

import (
	"encoding/json"
	"regexp"
	"testing"
)

// cipherV3RE is the documented pattern that isCipherV3 implements by hand.
var cipherV3RE = regexp.MustCompile(`^ncpkms:v[1-9][0-9]{0,8}:([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$`)

// FuzzV3Patterns: the hand-written checks of the batch path accept exactly
// what the documented patterns accept, and countItems counts what
// encoding/json decodes.
func FuzzV3Patterns(f *testing.F) {
	for _, s := range []string{"", "bQ==", "bQ=", "bQ", "b===", "AAAA", "AA=A", "SGVs\nbG8=", "ncpkms:v1:AAAA",
		"ncpkms:v0:AAAA", "ncpkms:v1234567890:AAAA", "ncpkms:v123456789:AA==", "ncpkms:v1:", "ncpkms:v1AAAA", "ncpkms:v:AAAA",
		`[]`, `[{}]`, `{"requests":[1,2]}`, `{"requests":[{"plaintext":"bQ==","context":"x"}, {} ,{"context":"","plaintext":""}]}`, ` { "requests" : [ { "plaintext" : "a" } ] } `, `{"a":[1,2],"Requests":[[3,4],{"x":[5,6]}]}`, `{"requests":["\\\",]"]}`, `[1,[2,3],{"a":"b,c"}]`, `["\"],"]`, ` [ ] `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isBase64V3(s), base64RE.MatchString(s); got != want {
			t.Errorf("isBase64V3(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := isCipherV3(s), cipherV3RE.MatchString(s); got != want {
			t.Errorf("isCipherV3(%q) = %v, the pattern says %v", s, got, want)
		}
		var items []any
		if json.Unmarshal([]byte(s), &items) == nil && s != "null" {
			if n, ok := countItems([]byte(s)); !ok || n != len(items) {
				t.Errorf("countItems(%q) = %d, %v; json decodes %d items", s, n, ok, len(items))
			}
		}
		if vals, ctxs, ok := fastBatch([]byte(s), "plaintext"); ok {
			var req struct{ Requests []v3EncryptRequest }
			if err := json.Unmarshal([]byte(s), &req); err != nil || len(req.Requests) != len(vals) || len(vals) > 100 || len(vals) == 0 {
				t.Fatalf("fastBatch(%q) read %d items; encoding/json: %v, %d items", s, len(vals), err, len(req.Requests))
			}
			for i, r := range req.Requests {
				if r.Plaintext != vals[i] || r.Context != ctxs[i] {
					t.Fatalf("fastBatch(%q) item %d: %q %q; encoding/json: %q %q", s, i, vals[i], ctxs[i], r.Plaintext, r.Context)
				}
			}
		}
		var body struct{ Requests []json.RawMessage }
		if json.Unmarshal([]byte(s), &body) == nil {
			if n := memberArrayItems([]byte(s)); n < len(body.Requests) {
				t.Errorf("memberArrayItems(%q) = %d, below the %d items json decodes", s, n, len(body.Requests))
			}
		}
	})
}

// base64RE is the Base64 pattern as the 3.0 pages write it; isBase64V3 must
// agree with it.
var base64RE = regexp.MustCompile(`^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$`)
