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

// withoutVersions returns k as UnmarshalKey gives it: without versions.
func withoutVersions(k *nkms.Key) *nkms.Key {
	c := k.Clone()
	c.Versions = nil
	return c
}

func TestKeyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		key  *nkms.Key
	}{
		{"full", sampleKey()},
		{"zero times and no versions", &nkms.Key{ID: 1, Tag: "t", Name: "abc", State: nkms.StateEnable}},
		{"rotation turned off through 3.0", &nkms.Key{ID: 2, Tag: "u", Name: "def", State: nkms.StateEnable,
			RotationPeriod: 45, RotationPeriodKept: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			got, n, err := UnmarshalKey(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, withoutVersions(tc.key), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-got +want):\n%s", diff)
			}
			if n != len(tc.key.Versions) {
				t.Errorf("version count = %d, want %d", n, len(tc.key.Versions))
			}
			if got.Registered.IsZero() != tc.key.Registered.IsZero() {
				t.Errorf("Registered.IsZero() = %v, want %v", got.Registered.IsZero(), tc.key.Registered.IsZero())
			}
			if err := SetVersions(got, n, tc.key.Clone().Versions); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.key, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("with versions (-got +want):\n%s", diff)
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
		`"format":2`, `"id":42`, `"keystore":7`, `"statusDate":` + strconv.FormatInt(k.StatusDate.UnixNano(), 10),
		`"versionCount":2`, `"sealedSecret":"` + base64.StdEncoding.EncodeToString([]byte("sealed-gen")) + `"`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("record %s does not contain %s", b, want)
		}
	}
	for _, absent := range []string{`"versions"`, base64.StdEncoding.EncodeToString([]byte("sealed-2"))} {
		if bytes.Contains(b, []byte(absent)) {
			t.Errorf("record %s contains %s: versions are records of their own", b, absent)
		}
	}
}

// recordV1 is sampleKey as the key record of format 1 that nkms wrote
// before versions were kept apart (MarshalKey of commit 9b8bc44).
const recordV1 = `{"format":1,"id":42,"tag":"abababababababababababababababababababababababababababababababab","keystore":7,"name":"payments","type":"AES256","protection":"COMMON_HSM","memo":"메모 memo","convergent":true,"state":"REVOKE","statusDate":1741032367891011121,"destroyDate":1741291567891011121,"registered":1741028767891011121,"autoRotation":true,"rotationPeriod":30,"rotationBase":1741025167891011121,"versions":[{"number":1,"state":"DISABLE","statusDate":1741032367891011121,"created":1741028767891011121,"sealed":"AAEC/w=="},{"number":2,"state":"ENABLE","statusDate":1741032367891011121,"created":1741032367891011121,"sealed":"c2VhbGVkLTI="}],"aclEnabled":true,"allowedIps":["203.0.113.7","10.0.0.0/8"],"tokenGenerator":{"id":"gen-1","active":true,"sealedSecret":"c2VhbGVkLWdlbg==","enabled":1741032427891011121,"disabled":1741032307891011121,"issued":3}}`

func TestKeyRecordV1(t *testing.T) {
	t.Parallel()
	got, err := UnmarshalKeyV1([]byte(recordV1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, sampleKey(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("format 1 record (-got +want):\n%s", diff)
	}
	if f, err := KeyRecordFormat([]byte(recordV1)); f != KeyFormatV1 || err != nil {
		t.Errorf("KeyRecordFormat = %d, %v; want %d", f, err, KeyFormatV1)
	}
	if _, _, err := UnmarshalKey([]byte(recordV1)); !errors.Is(err, ErrKeyFormatV1) {
		t.Errorf("UnmarshalKey of a format 1 record: error %v, want ErrKeyFormatV1", err)
	}
	b, err := MarshalKey(sampleKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalKeyV1(b); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("UnmarshalKeyV1 of a format 2 record: error %v, want ErrUnknownFormat", err)
	}
}

func TestUnmarshalDoesNotAlias(t *testing.T) {
	t.Parallel()
	b, err := MarshalKey(sampleKey())
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := UnmarshalKey(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if want := []byte("sealed-gen"); !bytes.Equal(k.TokenGen.SealedSecret, want) {
		t.Errorf("SealedSecret after clearing input = %q, want %q", k.TokenGen.SealedSecret, want)
	}
	v1 := []byte(recordV1)
	k, err = UnmarshalKeyV1(v1)
	if err != nil {
		t.Fatal(err)
	}
	clear(v1)
	if want := []byte("sealed-2"); !bytes.Equal(k.Versions[1].Sealed, want) {
		t.Errorf("format 1: Sealed after clearing input = %q, want %q", k.Versions[1].Sealed, want)
	}
}

func TestUnknownFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rec string
	}{
		{"future format", `{"format":3,"id":1}`},
		{"future format, other shape", `{"format":4,"id":"x-1"}`},
		{"no format", `{"id":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := UnmarshalKey([]byte(tc.rec)); !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("UnmarshalKey error = %v, want ErrUnknownFormat", err)
			}
			if _, err := UnmarshalKeyV1([]byte(tc.rec)); !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("UnmarshalKeyV1 error = %v, want ErrUnknownFormat", err)
			}
			if _, err := UnmarshalAccessKey([]byte(tc.rec)); !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("UnmarshalAccessKey error = %v, want ErrUnknownFormat", err)
			}
		})
	}
	if _, err := UnmarshalAccessKey([]byte(`{"format":2,"id":"x"}`)); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("UnmarshalAccessKey of format 2: error %v, want ErrUnknownFormat", err)
	}
}

func TestMalformedRecordErrorHidesContent(t *testing.T) {
	t.Parallel()
	secret := "c2VjcmV0LW1hdGVyaWFs"
	for _, rec := range []string{
		`{"format":1,"versions":[{"sealed":"` + secret + `!"}]}`,
		`{"format":1,"versions":[{"sealed":` + secret + `}]}`,
		`{"format":1,"id":"` + secret + `"}`,
		`{"format":2,"tokenGenerator":{"sealedSecret":"` + secret + `!"}}`,
		`{"format":2,"id":"` + secret + `"}`,
	} {
		_, _, err2 := UnmarshalKey([]byte(rec))
		_, err1 := UnmarshalKeyV1([]byte(rec))
		for _, err := range []error{err1, err2} {
			if err == nil {
				t.Fatalf("%s decoded", rec)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:4]) {
				t.Errorf("error %q contains record content", err)
			}
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

func TestSetVersions(t *testing.T) {
	t.Parallel()
	vs := sampleKey().Versions
	for _, tc := range []struct {
		name string
		n    int
		vs   []nkms.Version
	}{
		{"fewer records", 3, vs},
		{"more records", 1, vs},
		{"gap", 2, []nkms.Version{vs[0], {Number: 3}}},
		{"not from 1", 1, vs[1:]},
	} {
		if err := SetVersions(&nkms.Key{}, tc.n, tc.vs); err == nil {
			t.Errorf("SetVersions (%s) succeeded", tc.name)
		}
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
	f.Add([]byte(recordV1))
	f.Add([]byte(`{"format":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := UnmarshalKeyV1(b); err == nil {
			if err := CheckNumbers(k.Versions); err == nil {
				for i := range k.Versions {
					MarshalVersion(&k.Versions[i]) // may fail (a state or a time), must not panic
				}
			}
		}
		k, n, err := UnmarshalKey(b)
		if err != nil {
			return
		}
		k.Versions = make([]nkms.Version, n%1000)
		again, err := MarshalKey(k)
		if err != nil {
			t.Fatalf("encoding a decoded key: %v", err)
		}
		k2, n2, err := UnmarshalKey(again)
		if err != nil {
			t.Fatalf("re-decoding an encoded key: %v", err)
		}
		k.Versions = nil
		if diff := cmp.Diff(k2, k, cmpopts.EquateEmpty()); diff != "" || n2 != n%1000 {
			t.Errorf("decode-encode-decode changed the key (count %d, want %d) (-got +want):\n%s", n2, n%1000, diff)
		}
	})
}
