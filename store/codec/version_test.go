package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nkms/nkms"
)

func TestVersionRoundTrip(t *testing.T) {
	t.Parallel()
	vs := append(sampleKey().Versions,
		nkms.Version{Number: 3, State: nkms.StateEnable},                                                        // zero times, no material
		nkms.Version{Number: 1<<32 - 1, State: nkms.StateDisable, Created: time.Unix(0, -5), Sealed: []byte{0}}, // before 1970
	)
	var recs [][]byte
	for i := range vs {
		b, err := MarshalVersion(&vs[i])
		if err != nil {
			t.Fatalf("version %d: %v", vs[i].Number, err)
		}
		got, rest, err := UnmarshalVersion(b, nil)
		if err != nil {
			t.Fatalf("version %d: %v", vs[i].Number, err)
		}
		if diff := cmp.Diff(got, vs[i], cmpopts.EquateEmpty()); diff != "" || len(rest) != 0 {
			t.Errorf("version %d round trip (-got +want):\n%s", vs[i].Number, diff)
		}
		if !VersionsEqual(&got, &vs[i]) {
			t.Errorf("version %d: VersionsEqual after a round trip is false", vs[i].Number)
		}
		recs = append(recs, b)
	}
	got, err := UnmarshalVersions(recs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, vs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("UnmarshalVersions (-got +want):\n%s", diff)
	}
	for _, r := range recs {
		clear(r)
	}
	if !bytes.Equal(got[1].Sealed, []byte("sealed-2")) {
		t.Errorf("Sealed after clearing the records = %q: decoding aliases its input", got[1].Sealed)
	}
	// The versions share an arena, each capped: an append to one copies.
	got[0].Sealed = append(got[0].Sealed, 'x')
	if !bytes.Equal(got[1].Sealed, []byte("sealed-2")) {
		t.Errorf("an append to version 1's material changed version 2's: %q", got[1].Sealed)
	}
}

// TestVersionRecordShape pins the binary layout that data files hold.
func TestVersionRecordShape(t *testing.T) {
	t.Parallel()
	v := sampleKey().Versions[0]
	b, err := MarshalVersion(&v)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{VersionFormat, 2, 0, 0, 0, 1}
	want = binary.BigEndian.AppendUint64(want, uint64(v.StatusDate.UnixNano()))
	want = binary.BigEndian.AppendUint64(want, uint64(v.Created.UnixNano()))
	want = append(want, v.Sealed...)
	if !bytes.Equal(b, want) {
		t.Errorf("record\n%x, want\n%x", b, want)
	}
}

func TestVersionEncodeRefuses(t *testing.T) {
	t.Parallel()
	for _, v := range []nkms.Version{
		{Number: 1, State: nkms.StateRevoke},
		{Number: 1, State: ""},
		{Number: 0, State: nkms.StateEnable},
		{Number: 1 << 32, State: nkms.StateEnable},
		{Number: 1, State: nkms.StateEnable, Created: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := MarshalVersion(&v); err == nil {
			t.Errorf("MarshalVersion(%+v) succeeded", v)
		}
	}
}

func TestVersionDecodeRefuses(t *testing.T) {
	t.Parallel()
	good, err := MarshalVersion(&sampleKey().Versions[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  []byte
		want error
	}{
		{"empty", nil, ErrVersionRecord},
		{"short", good[:versionHeader-1], ErrVersionRecord},
		{"future format", append([]byte{2}, good[1:]...), ErrUnknownFormat},
		{"JSON", []byte(`{"number":1,"state":"ENABLE","statusDate":0,"created":0}`), ErrUnknownFormat},
		{"state 0", append([]byte{1, 0}, good[2:]...), ErrVersionRecord},
		{"state 3", append([]byte{1, 3}, good[2:]...), ErrVersionRecord},
	} {
		if _, _, err := UnmarshalVersion(tc.rec, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
		if _, err := UnmarshalVersions([][]byte{good, tc.rec}); !errors.Is(err, tc.want) {
			t.Errorf("%s among others: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzUnmarshalVersion(f *testing.F) {
	for _, v := range sampleKey().Versions {
		b, err := MarshalVersion(&v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, _, err := UnmarshalVersion(b, make([]byte, 0, 8))
		if err != nil {
			return
		}
		if v.Number == 0 {
			return // decodes, but no store writes (or accepts) version 0
		}
		again, err := MarshalVersion(&v)
		if err != nil {
			t.Fatalf("encoding a decoded version: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Errorf("decode-encode changed the record:\n%x\n%x", again, b)
		}
	})
}
