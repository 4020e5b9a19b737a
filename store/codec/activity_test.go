package codec

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

func sampleActivity() *nkms.Activity {
	return &nkms.Activity{
		Tag: strings.Repeat("cd", 32), Keystore: 7, KeyName: "payments",
		Time:        time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("KST", 9*3600)),
		RequestType: "API", Requestor: "NKABCDEF", IP: "203.0.113.7",
		Result: "FAIL", Action: "Decrypt", AuthType: "TOKEN", Message: "invalid_state 한글",
	}
}

func TestActivityRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a    *nkms.Activity
	}{
		{"full", sampleActivity()},
		{"system, zero time", &nkms.Activity{Tag: "t", RequestType: "SYSTEM", Result: "SUCCESS", Action: "AutoRotate", AuthType: "SYSTEM"}},
		{"aggregated refusal", &nkms.Activity{Tag: "t", Time: time.Unix(1700000000, 0), RequestType: "API", Requestor: "NKviewer",
			IP: "192.0.2.9", Result: "FAIL", Action: "Encrypt", AuthType: "ACCOUNT", Message: "210 (x37)", Refused: true, Count: 37}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalActivity(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalActivity(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.a); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			if got.Time.IsZero() != tc.a.Time.IsZero() {
				t.Errorf("Time.IsZero() = %v, want %v", got.Time.IsZero(), tc.a.Time.IsZero())
			}
		})
	}
}

func TestActivityRecordShape(t *testing.T) {
	t.Parallel()
	a := sampleActivity()
	b, err := MarshalActivity(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"format":1`, `"keystore":7`, `"keyName":"payments"`, `"time":` + strconv.FormatInt(a.Time.UnixNano(), 10),
		`"requestType":"API"`, `"requestor":"NKABCDEF"`, `"ip":"203.0.113.7"`, `"result":"FAIL"`,
		`"action":"Decrypt"`, `"authType":"TOKEN"`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("record %s does not contain %s", b, want)
		}
	}
}

// TestActivityRefusalFields: a refusal's mark and count are stored, and left
// out of an ordinary entry's record, which stays as it was before them.
func TestActivityRefusalFields(t *testing.T) {
	t.Parallel()
	a := sampleActivity()
	a.Refused, a.Count, a.Message = true, 37, "210 (x37)"
	b, err := MarshalActivity(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"refused":true`, `"count":37`, `"message":"210 (x37)"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("record %s does not contain %s", b, want)
		}
	}
	b, err = MarshalActivity(sampleActivity())
	if err != nil {
		t.Fatal(err)
	}
	for _, unwanted := range []string{"refused", "count"} {
		if bytes.Contains(b, []byte(unwanted)) {
			t.Errorf("the record of an ordinary entry %s contains %s", b, unwanted)
		}
	}
}

// TestActivityRecordBeforeRefusals: a record written before refusals were
// marked (pinned bytes) decodes as an ordinary entry.
func TestActivityRecordBeforeRefusals(t *testing.T) {
	t.Parallel()
	rec := `{"format":1,"tag":"t","keystore":1,"keyName":"k","time":1700000000000000000,"requestType":"API",` +
		`"requestor":"NKviewer","ip":"192.0.2.9","result":"FAIL","action":"Encrypt","authType":"ACCOUNT","message":"210"}`
	a, err := UnmarshalActivity([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	if a.Refused || a.Count != 0 || a.Calls() != 1 || a.Message != "210" {
		t.Errorf("old record decoded as Refused %v, Count %d, Calls %d, Message %q; want an ordinary entry of one call, message 210",
			a.Refused, a.Count, a.Calls(), a.Message)
	}
}

func TestActivityUnknownFormat(t *testing.T) {
	t.Parallel()
	for _, rec := range []string{`{"format":2,"tag":"x"}`, `{"format":3,"time":"soon"}`, `{"tag":"x"}`} {
		if _, err := UnmarshalActivity([]byte(rec)); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("UnmarshalActivity(%s) error = %v, want ErrUnknownFormat", rec, err)
		}
	}
}

func TestActivityTimeOutOfRange(t *testing.T) {
	t.Parallel()
	a := sampleActivity()
	a.Time = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := MarshalActivity(a); err == nil {
		t.Error("MarshalActivity with a year-3000 time succeeded")
	}
}

func FuzzUnmarshalActivity(f *testing.F) {
	b, err := MarshalActivity(sampleActivity())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":1,"time":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := UnmarshalActivity(b)
		if err != nil {
			return
		}
		again, err := MarshalActivity(a)
		if err != nil {
			t.Fatalf("encoding a decoded activity: %v", err)
		}
		a2, err := UnmarshalActivity(again)
		if err != nil {
			t.Fatalf("re-decoding an encoded activity: %v", err)
		}
		if diff := cmp.Diff(a2, a); diff != "" {
			t.Errorf("decode-encode-decode changed the activity (-got +want):\n%s", diff)
		}
	})
}

// jsonRecord is the record of a as encoding/json makes it: what
// AppendActivity must write, byte for byte.
func jsonRecord(t testing.TB, a *nkms.Activity) []byte {
	t.Helper()
	at, err := nanos(a.Time)
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendActivityJSON(nil, a, at)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendActivityIsJSON: the record written field by field is the one
// encoding/json writes, for the usual entries and for strings it escapes;
// appended records keep what dst held.
func TestAppendActivityIsJSON(t *testing.T) {
	t.Parallel()
	usual := &nkms.Activity{Tag: strings.Repeat("ab", 32), Keystore: 1, KeyName: "bench", Time: time.Unix(1700000000, 123),
		RequestType: "API", Requestor: "NKABCDEF0123", IP: "127.0.0.1", Result: "SUCCESS", Action: "Encrypt", AuthType: "ACCOUNT", Version: 3}
	cases := []*nkms.Activity{usual, sampleActivity(), {}, {Tag: "t", Refused: true, Count: -2, Version: -1, Keystore: -9}}
	for _, s := range []string{"<", ">", "&", `"`, `\`, "\x00", "\x1f", "\x7f", "\u2028", "é", "\xff", "a b~"} {
		a := *usual
		a.KeyName, a.Message = "name"+s, s
		cases = append(cases, &a)
	}
	for _, a := range cases {
		want := jsonRecord(t, a)
		got, err := AppendActivity([]byte("prefix"), a)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("AppendActivity(%+v)\n got %s\nwant prefix%s", a, got, want)
		}
	}
}

func FuzzAppendActivity(f *testing.F) {
	f.Add("t", "payments", "NKABC", "203.0.113.7", "Encrypt", "210 (x37)", int64(7), int64(1700000000000000000), 37, 2, true)
	f.Add("<&>", "\xff\"\\", "\u2028", "", "", "", int64(-1), int64(0), 0, 0, false)
	f.Fuzz(func(t *testing.T, tag, name, requestor, ip, action, message string, keystore, at int64, count, version int, refused bool) {
		a := &nkms.Activity{Tag: tag, Keystore: keystore, KeyName: name, RequestType: "API", Requestor: requestor, IP: ip,
			Result: "FAIL", Action: action, AuthType: "TOKEN", Message: message, Refused: refused, Count: count, Version: version}
		if at != 0 {
			a.Time = time.Unix(0, at)
		}
		got, err := AppendActivity(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		if want := jsonRecord(t, a); !bytes.Equal(got, want) {
			t.Errorf("AppendActivity\n got %s\nwant %s", got, want)
		}
	})
}
