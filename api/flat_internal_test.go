package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// flatBodies are bodies at the edge of what the flat fast path takes.
var flatBodies = []string{
	`{"plaintext":"AAAA"}`, ` { "plaintext" : "AAAA" , "context" : "Y3R4" } ` + "\n\t\r",
	`{}`, ` {} `, `{"context":"x"}`, `{"plaintext":"a","plaintext":"b"}`, `{"ciphertext":"ncpkms:v1:AAAA"}`,
	`{"plaintext":""}`, `{"plaintext":"AAAA"}x`, `{"plaintext":"AAAA"}{}`, `{"plaintext":"AAAA",}`,
	`{"plaintext":"AAAA"`, `{"plaintext":"AA\"AA"}`, `{"plaintext":"AA\\u0041"}`, `{"plaintext":"é"}`,
	`{"plaintext":"a` + "\x7f" + `"}`, `{"plaintext":"a` + "\x01" + `"}`, `{"PlainText":"AAAA"}`,
	`{"plaintext":["AAAA"]}`, `{"plaintext":null}`, `{"plaintext":1}`, `{"other":"x"}`, `{"other":1}`,
	`{"plaintext" "AAAA"}`, `{"plaintext":"AAAA" "context":"x"}`, `{,}`, `{"":"x"}`, `[]`, `"x"`, `{`, `}`,
	`{"plaintext":"<&>"}`, `{"plaintext":"AAAA","context":"x","plaintext":"BBBB"}`,
}

// checkFlat fails t unless decoding b with the fast path, when it takes b,
// gives what encoding/json gives, for both request types, and leaves the
// request untouched when it does not take b.
func checkFlat(t *testing.T, b []byte) {
	t.Helper()
	for _, newReq := range []func() any{
		func() any { return new(encryptRequest) },
		func() any { return new(decryptRequest) },
	} {
		fast, want := newReq(), newReq()
		took := fast.(flatDecoder).decodeFlat(b)
		if !took {
			if !reflect.ValueOf(fast).Elem().IsZero() {
				t.Errorf("%q: not taken, but the request was changed to %+v", b, fast)
			}
			continue
		}
		if err := json.Unmarshal(b, want); err != nil {
			t.Errorf("%q: the fast path took a body that encoding/json refuses (%v)", b, err)
			continue
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("%q: fast path got %+v, encoding/json %+v", b, fast, want)
		}
	}
}

func TestFlatDecodeIsJSON(t *testing.T) {
	for _, b := range flatBodies {
		checkFlat(t, []byte(b))
	}
	// The common bodies do take the fast path.
	var r encryptRequest
	if !r.decodeFlat([]byte(`{"plaintext":"AAAA","context":"Y3R4"}`)) || r.Plaintext.Items[0] != "AAAA" || r.Context != "Y3R4" {
		t.Errorf("the usual encrypt body did not take the fast path: %+v", r)
	}
}

func FuzzFlatDecode(f *testing.F) {
	for _, b := range flatBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFlat(t, b) })
}

// checkFlatAnswer fails t unless writeFlat, when it takes the data of each
// crypto answer made of value (a string or a []string), writes what
// encoding/json writes.
func checkFlatAnswer(t *testing.T, value any) {
	t.Helper()
	for _, data := range []any{encryptResponse{value}, decryptResponse{value}, reEncryptResponse{value}} {
		var buf bytes.Buffer
		if !writeFlat(&buf, data) {
			if buf.Len() != 0 {
				t.Errorf("%#v: not taken, but %q written", data, buf.Bytes())
			}
			continue
		}
		want, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if buf.String() != string(want) {
			t.Errorf("%#v: writeFlat wrote %s, encoding/json %s", data, buf.Bytes(), want)
		}
	}
}

func TestFlatAnswerIsJSON(t *testing.T) {
	for _, v := range []any{"ncpkms:v1:AAAA", "", "<&>", `"`, `\`, "é", "\x7f", []string{"a", "b"}, []string{},
		[]string{"a", "<"}, []string{""}, nil, 3} {
		checkFlatAnswer(t, v)
	}
	var buf bytes.Buffer
	if !writeFlat(&buf, encryptResponse{"ncpkms:v1:AAAA"}) {
		t.Error("the usual encrypt answer did not take the fast path")
	}
}

func FuzzFlatAnswer(f *testing.F) {
	f.Add("ncpkms:v1:AAAA", "AAAA", false)
	f.Add("<", "\xff", true)
	f.Fuzz(func(t *testing.T, a, b string, list bool) {
		if list {
			checkFlatAnswer(t, []string{a, b})
		} else {
			checkFlatAnswer(t, a)
		}
	})
}
