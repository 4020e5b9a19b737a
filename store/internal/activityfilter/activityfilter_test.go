package activityfilter

import (
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

func sample() *nkms.Activity {
	return &nkms.Activity{
		Tag: "SECRETTAG", KeyName: "KeyNameOnly", RequestType: "API", Requestor: "NKAbc", IP: "10.0.0.1",
		Result: "FAIL", Action: "Encrypt", AuthType: "TOKEN", Message: "invalid_state",
		Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	}
}

func TestKeyword(t *testing.T) {
	t.Parallel()
	a := sample()
	for _, tc := range []struct {
		keyword string
		want    bool
	}{
		{"", true},
		{"encrypt", true},
		{"CRYPT", true},
		{"nkabc", true},
		{"10.0.0", true},
		{"fail", true},
		{"token", true},
		{"api", true},
		{"INVALID_STATE", true},
		{"keynameonly", false}, // KeyName is not searched
		{"secrettag", false},   // nor is Tag
		{"decrypt", false},
		{"format", false}, // a name in the record, not a value
	} {
		if got := NewKeyword(tc.keyword).Match(a); got != tc.want {
			t.Errorf("NewKeyword(%q).Match = %v, want %v", tc.keyword, got, tc.want)
		}
		if rec := marshal(t, a); tc.want && !NewKeyword(tc.keyword).MayMatch(rec) {
			t.Errorf("NewKeyword(%q).MayMatch(record) = false for a matching entry", tc.keyword)
		}
	}
}

func TestKeywordUnicode(t *testing.T) {
	t.Parallel()
	a := sample()
	for _, tc := range []struct {
		message, keyword string
		want             bool
	}{
		{"키 상태 오류", "상태", true},
		{"ΣΊΣΥΦΟΣ", "σίσυφοσ", true},
		{"KELVIN \u212a", "kelvin k", true}, // the Kelvin sign lower-cases to an ASCII k
		{"\u0130stanbul", "istanbul", true}, // so does the dotted capital I, in Go
		{"a <b> & \"c\"", "<B> & \"C", true},
		{"tab\there", "tab\th", true},
		{"plain", "é", false},
	} {
		a.Message = tc.message
		k := NewKeyword(tc.keyword)
		if got := k.Match(a); got != tc.want {
			t.Errorf("NewKeyword(%q).Match(message %q) = %v, want %v", tc.keyword, tc.message, got, tc.want)
		}
		if tc.want && !k.MayMatch(marshal(t, a)) {
			t.Errorf("NewKeyword(%q).MayMatch(record with message %q) = false for a matching entry", tc.keyword, tc.message)
		}
	}
}

func marshal(t testing.TB, a *nkms.Activity) []byte {
	t.Helper()
	rec, err := codec.MarshalActivity(a)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// FuzzMayMatch checks that MayMatch never rules out the record of a matching
// entry, and that Match agrees with the plain definition.
func FuzzMayMatch(f *testing.F) {
	f.Add("Encrypt", "invalid_state", "crypt")
	f.Add("Sign", "a<b>&\"q\"\\", "<B>")
	f.Add("AutoRotate", "\u0130\u212a", "ik")
	f.Fuzz(func(t *testing.T, action, message, keyword string) {
		a := sample()
		a.Action, a.Message = action, message
		k := NewKeyword(keyword)
		want := false
		for _, f := range []string{a.Action, a.Requestor, a.IP, a.Result, a.AuthType, a.RequestType, a.Message} {
			want = want || strings.Contains(strings.ToLower(f), strings.ToLower(keyword))
		}
		if got := k.Match(a); got != want {
			t.Errorf("NewKeyword(%q).Match(action %q, message %q) = %v, want %v", keyword, action, message, got, want)
		}
		if want && !k.MayMatch(marshal(t, a)) {
			t.Errorf("NewKeyword(%q).MayMatch = false for the record of a matching entry (action %q, message %q)", keyword, action, message)
		}
	})
}
