// Package codec is the one record encoding of keys, key versions and access
// keys at rest, shared by the persistent stores (store/bolt, store/etcd).
//
// A key or access-key record is a JSON object with explicit field names and a
// "format" version. Times are Unix nanoseconds (the zero time is 0). Sealed
// material is stored as it is given (already sealed under the root key),
// base64 in the JSON. Decoding refuses a format it does not know, so that a
// newer data file is never half-read by an older server.
//
// A key record (format 2, KeyFormat) holds the key without its versions and
// their number; each version is a record of its own (version.go), so that a
// rotation writes one small record whatever the number of versions. Key
// records of format 1 embedded every version; UnmarshalKeyV1 reads them for
// the stores that migrate older data.
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nkms/nkms"
)

// Format is the record format version of access keys and usage-log entries.
const Format = 1

// KeyFormat is the format version of the key records written by this
// package; KeyFormatV1 is that of the key records before versions were kept
// apart.
const (
	KeyFormat   = 2
	KeyFormatV1 = 1
)

// keyRecord is the stored form of nkms.Key, format 2: keyRecordV1 without
// the versions, with their number instead.
type keyRecord struct {
	keyFields
	VersionCount int `json:"versionCount"`
}

// keyRecordV1 is the stored form of nkms.Key, format 1.
type keyRecordV1 struct {
	keyFields
	Versions []versionRecordV1 `json:"versions"`
}

// keyFields are the fields of a key record shared by formats 1 and 2.
type keyFields struct {
	Format         int             `json:"format"`
	ID             int64           `json:"id"`
	Tag            string          `json:"tag"`
	Keystore       int64           `json:"keystore"`
	Name           string          `json:"name"`
	Type           string          `json:"type"`
	Protection     string          `json:"protection"`
	Memo           string          `json:"memo,omitempty"`
	Convergent     bool            `json:"convergent,omitempty"`
	State          string          `json:"state"`
	StatusDate     int64           `json:"statusDate"`
	DestroyDate    int64           `json:"destroyDate,omitempty"`
	Registered     int64           `json:"registered"`
	AutoRotation   bool            `json:"autoRotation,omitempty"`
	RotationPeriod int             `json:"rotationPeriod"`
	RotationBase   int64           `json:"rotationBase,omitempty"`
	ACLEnabled     bool            `json:"aclEnabled,omitempty"`
	AllowedIPs     []string        `json:"allowedIps,omitempty"`
	TokenGen       *tokenGenRecord `json:"tokenGenerator,omitempty"`
	PeriodKept     bool            `json:"rotationPeriodKept,omitempty"` // Key.RotationPeriodKept; absent (older records): false
}

// tokenGenRecord is the stored form of nkms.TokenGenerator, format 1.
type tokenGenRecord struct {
	ID           string `json:"id"`
	Active       bool   `json:"active,omitempty"`
	SealedSecret []byte `json:"sealedSecret,omitempty"`
	Enabled      int64  `json:"enabled,omitempty"`
	Disabled     int64  `json:"disabled,omitempty"`
	Issued       int    `json:"issued,omitempty"`
}

// versionRecordV1 is the stored form of nkms.Version inside a key record of format 1.
type versionRecordV1 struct {
	Number     int    `json:"number"`
	State      string `json:"state"`
	StatusDate int64  `json:"statusDate"`
	Created    int64  `json:"created"`
	Sealed     []byte `json:"sealed"`
}

// accessKeyRecord is the stored form of nkms.AccessKey, format 1.
type accessKeyRecord struct {
	Format       int    `json:"format"`
	ID           string `json:"id"`
	Keystore     int64  `json:"keystore"`
	Role         string `json:"role"`
	SealedSecret []byte `json:"sealedSecret"`
	Created      int64  `json:"created"`
}

// header is the part of every record that is read before the rest.
type header struct {
	Format int `json:"format"`
}

// ErrUnknownFormat is returned (wrapped) for a record whose format version
// this build does not know.
var ErrUnknownFormat = errors.New("unknown record format")

// MarshalKey encodes k as a key record of format 2: everything but the
// versions, and their number (each version is stored with MarshalVersion).
// It fails only for a time that Unix nanoseconds cannot hold (before 1678 or
// after 2262).
func MarshalKey(k *nkms.Key) ([]byte, error) {
	r := keyRecord{VersionCount: len(k.Versions)}
	if err := r.keyFields.set(k); err != nil {
		return nil, err
	}
	r.Format = KeyFormat
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", k.Tag, err)
	}
	return b, nil
}

// set fills f from k, all but the format.
func (f *keyFields) set(k *nkms.Key) error {
	*f = keyFields{
		ID: k.ID, Tag: k.Tag, Keystore: k.Keystore, Name: k.Name,
		Type: string(k.Type), Protection: string(k.Protection), Memo: k.Memo, Convergent: k.Convergent,
		State: string(k.State), AutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod,
		PeriodKept: k.RotationPeriodKept, ACLEnabled: k.ACLEnabled, AllowedIPs: k.AllowedIPs,
	}
	var err error
	times := []struct {
		dst  *int64
		t    time.Time
		name string
	}{
		{&f.StatusDate, k.StatusDate, "statusDate"},
		{&f.DestroyDate, k.DestroyDate, "destroyDate"},
		{&f.Registered, k.Registered, "registered"},
		{&f.RotationBase, k.RotationBase, "rotationBase"},
	}
	for _, t := range times {
		if *t.dst, err = nanos(t.t); err != nil {
			return fmt.Errorf("encode key %s: %s: %w", k.Tag, t.name, err)
		}
	}
	if g := k.TokenGen; g.ID != "" || g.Active || len(g.SealedSecret) > 0 || !g.Enabled.IsZero() || !g.Disabled.IsZero() || g.Issued != 0 {
		tr := &tokenGenRecord{ID: g.ID, Active: g.Active, SealedSecret: g.SealedSecret, Issued: g.Issued}
		if tr.Enabled, err = nanos(g.Enabled); err != nil {
			return fmt.Errorf("encode key %s: token generator enabled: %w", k.Tag, err)
		}
		if tr.Disabled, err = nanos(g.Disabled); err != nil {
			return fmt.Errorf("encode key %s: token generator disabled: %w", k.Tag, err)
		}
		f.TokenGen = tr
	}
	return nil
}

// key returns the key that f describes, without versions.
func (f *keyFields) key() *nkms.Key {
	k := &nkms.Key{
		ID: f.ID, Tag: f.Tag, Keystore: f.Keystore, Name: f.Name,
		Type: nkms.KeyType(f.Type), Protection: nkms.Protection(f.Protection), Memo: f.Memo, Convergent: f.Convergent,
		State:      nkms.State(f.State),
		StatusDate: fromNanos(f.StatusDate), DestroyDate: fromNanos(f.DestroyDate), Registered: fromNanos(f.Registered),
		AutoRotation: f.AutoRotation, RotationPeriod: f.RotationPeriod, RotationBase: fromNanos(f.RotationBase),
		RotationPeriodKept: f.PeriodKept, ACLEnabled: f.ACLEnabled, AllowedIPs: f.AllowedIPs,
	}
	if g := f.TokenGen; g != nil {
		k.TokenGen = nkms.TokenGenerator{ID: g.ID, Active: g.Active, SealedSecret: g.SealedSecret,
			Enabled: fromNanos(g.Enabled), Disabled: fromNanos(g.Disabled), Issued: g.Issued}
	}
	return k
}

// UnmarshalKey decodes a key record of format 2: the key without versions
// (k.Versions is nil) and the number of versions stored apart, which the
// store reads and checks with SetVersions. A record of format 1 is
// ErrKeyFormatV1. The result shares no memory with b.
func UnmarshalKey(b []byte) (k *nkms.Key, versions int, err error) {
	var r keyRecord
	if err := decodeFormat(b, &r, &r.Format, KeyFormat, "key"); err != nil {
		return nil, 0, err
	}
	if r.VersionCount < 0 {
		return nil, 0, fmt.Errorf("decode key record: versionCount %d", r.VersionCount)
	}
	return r.key(), r.VersionCount, nil
}

// ErrKeyFormatV1 is returned (wrapped) by UnmarshalKey for a key record of
// format 1, which a store must migrate first (UnmarshalKeyV1).
var ErrKeyFormatV1 = errors.New("key record of format 1 (versions inside), not migrated")

// UnmarshalKeyV1 decodes a key record of format 1, with its versions. The
// result shares no memory with b.
func UnmarshalKeyV1(b []byte) (*nkms.Key, error) {
	var r keyRecordV1
	if err := decodeFormat(b, &r, &r.Format, KeyFormatV1, "key"); err != nil {
		return nil, err
	}
	k := r.key()
	k.Versions = make([]nkms.Version, len(r.Versions))
	for i, v := range r.Versions {
		k.Versions[i] = nkms.Version{
			Number: v.Number, State: nkms.State(v.State),
			StatusDate: fromNanos(v.StatusDate), Created: fromNanos(v.Created), Sealed: v.Sealed,
		}
	}
	return k, nil
}

// KeyRecordFormat returns the format version of a key record.
func KeyRecordFormat(b []byte) (int, error) {
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, fmt.Errorf("decode key record: %w", safeJSONError(err))
	}
	return h.Format, nil
}

// SetVersions gives k, decoded by UnmarshalKey with the given number of
// versions, the versions read from their records, and checks that they are
// exactly versions 1..n.
func SetVersions(k *nkms.Key, n int, versions []nkms.Version) error {
	if len(versions) != n {
		return fmt.Errorf("key %s: %d version records, the key record says %d", k.Tag, len(versions), n)
	}
	if err := CheckNumbers(versions); err != nil {
		return fmt.Errorf("key %s: %w", k.Tag, err)
	}
	k.Versions = versions
	return nil
}

// CheckNumbers reports whether versions[i].Number == i+1 for every i.
func CheckNumbers(versions []nkms.Version) error {
	for i, v := range versions {
		if v.Number != i+1 {
			return fmt.Errorf("version %d at position %d: versions must be numbered 1..n", v.Number, i+1)
		}
	}
	return nil
}

// MarshalAccessKey encodes a as a record.
func MarshalAccessKey(a *nkms.AccessKey) ([]byte, error) {
	created, err := nanos(a.Created)
	if err != nil {
		return nil, fmt.Errorf("encode access key %s: created: %w", a.ID, err)
	}
	r := accessKeyRecord{
		Format: Format, ID: a.ID, Keystore: a.Keystore, Role: string(a.Role),
		SealedSecret: a.SealedSecret, Created: created,
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode access key %s: %w", a.ID, err)
	}
	return b, nil
}

// UnmarshalAccessKey decodes a record written by MarshalAccessKey. The result
// shares no memory with b.
func UnmarshalAccessKey(b []byte) (*nkms.AccessKey, error) {
	var r accessKeyRecord
	if err := decode(b, &r, &r.Format, "access key"); err != nil {
		return nil, err
	}
	return &nkms.AccessKey{
		ID: r.ID, Keystore: r.Keystore, Role: nkms.Role(r.Role),
		SealedSecret: r.SealedSecret, Created: fromNanos(r.Created),
	}, nil
}

// decode unmarshals b into rec and checks that its format is Format.
func decode(b []byte, rec any, format *int, what string) error {
	return decodeFormat(b, rec, format, Format, what)
}

// decodeFormat unmarshals b into rec and checks that its format is want.
// When b does not parse as a record of that format it still reports another
// format as such.
func decodeFormat(b []byte, rec any, format *int, want int, what string) error {
	if err := json.Unmarshal(b, rec); err != nil {
		var h header
		if json.Unmarshal(b, &h) == nil && h.Format != want {
			return formatError(what, h.Format)
		}
		return fmt.Errorf("decode %s record: %w", what, safeJSONError(err))
	}
	if *format != want {
		return formatError(what, *format)
	}
	return nil
}

func formatError(what string, format int) error {
	if what == "key" && format == KeyFormatV1 {
		return fmt.Errorf("decode %s record: %w", what, ErrKeyFormatV1)
	}
	return fmt.Errorf("decode %s record: %w %d", what, ErrUnknownFormat, format)
}

// safeJSONError reduces a JSON error to its kind and offset, so that no part
// of the record (which may hold sealed material) ends up in a message.
func safeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	default:
		return errors.New("malformed record")
	}
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as Unix nanoseconds; the zero time is 0.
func nanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, errors.New("time out of range")
	}
	return t.UnixNano(), nil
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
