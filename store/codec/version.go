package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/nkms/nkms"
)

// VersionFormat is the format version of the version records written by
// this package.
const VersionFormat = 1

// A version record is binary, not JSON: a store decodes every version of a
// key on each read of it, so decoding must cost little more than copying
// the sealed bytes. Layout (integers big-endian):
//
//	offset  size  field
//	0       1     format (VersionFormat)
//	1       1     state: 1 ENABLE, 2 DISABLE
//	2       4     number
//	6       8     statusDate, Unix ns (0: the zero time)
//	14      8     created, Unix ns (0: the zero time)
//	22      …     sealed material, as given (already sealed under the root key)
const versionHeader = 22

var versionStates = [...]nkms.State{1: nkms.StateEnable, 2: nkms.StateDisable}

// MarshalVersion encodes v as a version record. It fails for a state other
// than ENABLE or DISABLE, a number outside 1..2³²-1 and a time that Unix
// nanoseconds cannot hold.
func MarshalVersion(v *nkms.Version) ([]byte, error) {
	state := byte(0)
	for i, s := range versionStates {
		if s != "" && s == v.State {
			state = byte(i)
		}
	}
	if state == 0 {
		return nil, fmt.Errorf("encode version %d: state %q", v.Number, v.State)
	}
	if v.Number < 1 || v.Number > math.MaxUint32 {
		return nil, fmt.Errorf("encode version %d: number out of range", v.Number)
	}
	statusDate, err := nanos(v.StatusDate)
	if err != nil {
		return nil, fmt.Errorf("encode version %d: statusDate: %w", v.Number, err)
	}
	created, err := nanos(v.Created)
	if err != nil {
		return nil, fmt.Errorf("encode version %d: created: %w", v.Number, err)
	}
	b := make([]byte, versionHeader, versionHeader+len(v.Sealed))
	b[0], b[1] = VersionFormat, state
	binary.BigEndian.PutUint32(b[2:], uint32(v.Number))
	binary.BigEndian.PutUint64(b[6:], uint64(statusDate))
	binary.BigEndian.PutUint64(b[14:], uint64(created))
	return append(b, v.Sealed...), nil
}

// ErrVersionRecord is returned (wrapped) for a version record that does not
// decode.
var ErrVersionRecord = errors.New("malformed version record")

// UnmarshalVersion decodes a record written by MarshalVersion. The sealed
// bytes are copied into arena when it has room for them (so that the
// versions of one key can share one allocation) and into a new slice
// otherwise; the rest of arena is returned. The result shares no memory
// with b.
func UnmarshalVersion(b, arena []byte) (v nkms.Version, rest []byte, err error) {
	if len(b) < versionHeader {
		return v, arena, fmt.Errorf("%w: %d bytes", ErrVersionRecord, len(b))
	}
	if b[0] != VersionFormat {
		return v, arena, fmt.Errorf("decode version record: %w %d", ErrUnknownFormat, b[0])
	}
	if int(b[1]) >= len(versionStates) || versionStates[b[1]] == "" {
		return v, arena, fmt.Errorf("%w: state %d", ErrVersionRecord, b[1])
	}
	v.State = versionStates[b[1]]
	v.Number = int(binary.BigEndian.Uint32(b[2:]))
	v.StatusDate = fromNanos(int64(binary.BigEndian.Uint64(b[6:])))
	v.Created = fromNanos(int64(binary.BigEndian.Uint64(b[14:])))
	if sealed := b[versionHeader:]; len(sealed) > 0 {
		if len(sealed) <= cap(arena)-len(arena) {
			start := len(arena)
			arena = append(arena, sealed...)
			v.Sealed = arena[start:len(arena):len(arena)]
		} else {
			v.Sealed = append([]byte(nil), sealed...)
		}
	}
	return v, arena, nil
}

// VersionsEqual reports whether a and b would be stored as the same record.
func VersionsEqual(a, b *nkms.Version) bool {
	return a.Number == b.Number && a.State == b.State && a.StatusDate.Equal(b.StatusDate) &&
		a.Created.Equal(b.Created) && string(a.Sealed) == string(b.Sealed)
}

// UnmarshalVersions decodes the records of a key's versions; the sealed
// bytes of all of them share one allocation (each capped at its length).
// The result shares no memory with recs.
func UnmarshalVersions(recs [][]byte) ([]nkms.Version, error) {
	n := 0
	for _, r := range recs {
		n += max(len(r)-versionHeader, 0)
	}
	arena := make([]byte, 0, n)
	vs := make([]nkms.Version, len(recs))
	for i, r := range recs {
		var err error
		if vs[i], arena, err = UnmarshalVersion(r, arena); err != nil {
			return nil, err
		}
	}
	return vs, nil
}
