package api

import (
	"testing"

	"github.com/nkms/nkms"
)

// FuzzAdvanceBody: parseAdvance never panics; it accepts only a positive
// duration of at most nkms.MaxDevClockOffset, refuses anything else as
// INVALID_REQUEST, and what it accepts survives a round trip through the
// body the client sends (Duration.String).
func FuzzAdvanceBody(f *testing.F) {
	for _, s := range []string{`{"advance":"72h"}`, `{"advance":"1h30m"}`, `{"advance":"0s"}`, `{"advance":"-1h"}`,
		`{"advance":"876000h"}`, `{"advance":"876000h0m0.000000001s"}`, `{"advance":"9223372036854775807ns"}`,
		`{"advance":72}`, `{}`, ``, `{"advance":"1h"} {}`, `{"advance":"1.5h","other":1}`, `{"advance":"\u0031h"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := parseAdvance(body)
		if err != nil {
			if nkms.ErrorCode(err) != nkms.Invalid {
				t.Fatalf("%q: error %v is not Invalid", body, err)
			}
			return
		}
		if d <= 0 || d > nkms.MaxDevClockOffset {
			t.Fatalf("%q: accepted %v", body, d)
		}
		again, err := parseAdvance([]byte(`{"advance":"` + d.String() + `"}`))
		if err != nil || again != d {
			t.Fatalf("%q: %v does not round-trip: %v, %v", body, d, again, err)
		}
	})
}
