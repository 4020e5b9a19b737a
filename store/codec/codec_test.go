package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nkms/nkms"
)

func sampleKey() *nkms.Key {
	loc := time.FixedZone("KST", 9*3600)
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 891011121, loc)
	return &nkms.Key{
		ID: 42, Tag: strings.Repeat("ab", 32), Keystore: 7, Name: "payments", Type: nkms.AES256,
		Protection: nkms.ProtectionCommonHSM, Memo: "메모 memo", Convergent: true,
		State: nkms.StateRevoke, StatusDate: t0, DestroyDate: t0.Add(72 * time.Hour), Registered: t0.Add(-time.Hour),
		AutoRotation: true, RotationPeriod: 30, RotationBase: t0.Add(-2 * time.Hour),
		Versions: []nkms.Version{
			{Number: 1, State: nkms.StateDisable, StatusDate: t0, Created: t0.Add(-time.Hour), Sealed: []byte{0, 1, 2, 255}},
			{Number: 2, State: nkms.StateEnable, StatusDate: t0, Created: t0, Sealed: []byte("sealed-2")},
		},
		ACLEnabled: true, AllowedIPs: []string{"203.0.113.7", "10.0.0.0/8"},
		TokenGen: nkms.TokenGenerator{ID: "gen-1", Active: true, SealedSecret: []byte("sealed-gen"),
			Enabled: t0.Add(time.Minute), Disabled: t0.Add(-time.Minute), Issued: 3},
	}
}

func TestKeyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  *nkms.Key
	}{
		{"full", sampleKey()},
		{"zero times and no versions", &nkms.Key{ID: 1, Tag: "t", Name: "abc", State: nkms.StateEnable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalKey(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.key, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			if got.Registered.IsZero() != tc.key.Registered.IsZero() {
				t.Errorf("Registered.IsZero() = %v, want %v", got.Registered.IsZero(), tc.key.Registered.IsZero())
			}
		})
	}
}

func TestKeyRecordShape(t *testing.T) {
	t.Parallel()
	k := sampleKey()
	b, err := MarshalKey(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"format":1`, `"id":42`, `"keystore":7`, `"statusDate":` + strconv.FormatInt(k.StatusDate.UnixNano(), 10),
		`"sealed":"` + base64.StdEncoding.EncodeToString([]byte("sealed-2")) + `"`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("record %s does not contain %s", b, want)
		}
	}
}

func TestUnmarshalDoesNotAlias(t *testing.T) {
	t.Parallel()
	b, err := MarshalKey(sampleKey())
	if err != nil {
		t.Fatal(err)
	}
	k, err := UnmarshalKey(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if want := []byte("sealed-2"); !bytes.Equal(k.Versions[1].Sealed, want) {
		t.Errorf("Sealed after clearing input = %q, want %q", k.Versions[1].Sealed, want)
	}
}

func TestUnknownFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rec string
	}{
		{"future format", `{"format":2,"id":1}`},
		{"future format, other shape", `{"format":3,"id":"x-1"}`},
		{"no format", `{"id":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := UnmarshalKey([]byte(tc.rec)); !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("UnmarshalKey error = %v, want ErrUnknownFormat", err)
			}
			if _, err := UnmarshalAccessKey([]byte(tc.rec)); !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("UnmarshalAccessKey error = %v, want ErrUnknownFormat", err)
			}
		})
	}
}

func TestMalformedRecordErrorHidesContent(t *testing.T) {
	t.Parallel()
	secret := "c2VjcmV0LW1hdGVyaWFs"
	for _, rec := range []string{
		`{"format":1,"versions":[{"sealed":"` + secret + `!"}]}`,
		`{"format":1,"versions":[{"sealed":` + secret + `}]}`,
		`{"format":1,"id":"` + secret + `"}`,
	} {
		_, err := UnmarshalKey([]byte(rec))
		if err == nil {
			t.Fatalf("UnmarshalKey(%s) succeeded", rec)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:4]) {
			t.Errorf("error %q contains record content", err)
		}
	}
}

func TestTimeOutOfRange(t *testing.T) {
	t.Parallel()
	k := sampleKey()
	k.Registered = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := MarshalKey(k); err == nil {
		t.Error("MarshalKey with a year-3000 time succeeded")
	}
}

func TestAccessKeyRoundTrip(t *testing.T) {
	t.Parallel()
	a := &nkms.AccessKey{
		ID: "NKABCDEF", Keystore: 3, Role: nkms.RoleAdmin, SealedSecret: []byte{9, 8, 7},
		Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
	}
	b, err := MarshalAccessKey(a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalAccessKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, a); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
}

func FuzzUnmarshalKey(f *testing.F) {
	b, err := MarshalKey(sampleKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := UnmarshalKey(b)
		if err != nil {
			return
		}
		again, err := MarshalKey(k)
		if err != nil {
			t.Fatalf("encoding a decoded key: %v", err)
		}
		k2, err := UnmarshalKey(again)
		if err != nil {
			t.Fatalf("re-decoding an encoded key: %v", err)
		}
		if diff := cmp.Diff(k2, k, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("decode-encode-decode changed the key (-got +want):\n%s", diff)
		}
	})
}
