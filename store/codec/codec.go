// Package codec is the one record encoding of keys and access keys at rest,
// shared by the persistent stores (store/bolt, store/etcd).
//
// A record is a JSON object with explicit field names and a "format" version.
// Times are Unix nanoseconds (the zero time is 0). Sealed material is stored
// as it is given (already sealed under the root key), base64 in the JSON.
// Decoding refuses a format it does not know, so that a newer data file is
// never half-read by an older server.
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nkms/nkms"
)

// Format is the record format version written by this package.
const Format = 1

// keyRecord is the stored form of nkms.Key, format 1.
type keyRecord struct {
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
	Versions       []versionRecord `json:"versions"`
	ACLEnabled     bool            `json:"aclEnabled,omitempty"`
	AllowedIPs     []string        `json:"allowedIps,omitempty"`
	TokenGen       *tokenGenRecord `json:"tokenGenerator,omitempty"`
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

// versionRecord is the stored form of nkms.Version, format 1.
type versionRecord struct {
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

// MarshalKey encodes k as a record. It fails only for a time that Unix
// nanoseconds cannot hold (before 1678 or after 2262).
func MarshalKey(k *nkms.Key) ([]byte, error) {
	r := keyRecord{
		Format: Format, ID: k.ID, Tag: k.Tag, Keystore: k.Keystore, Name: k.Name,
		Type: string(k.Type), Protection: string(k.Protection), Memo: k.Memo, Convergent: k.Convergent,
		State: string(k.State), AutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod,
		Versions: make([]versionRecord, len(k.Versions)),
	}
	var err error
	times := []struct {
		dst  *int64
		t    time.Time
		name string
	}{
		{&r.StatusDate, k.StatusDate, "statusDate"},
		{&r.DestroyDate, k.DestroyDate, "destroyDate"},
		{&r.Registered, k.Registered, "registered"},
		{&r.RotationBase, k.RotationBase, "rotationBase"},
	}
	for _, f := range times {
		if *f.dst, err = nanos(f.t); err != nil {
			return nil, fmt.Errorf("encode key %s: %s: %w", k.Tag, f.name, err)
		}
	}
	for i, v := range k.Versions {
		vr := versionRecord{Number: v.Number, State: string(v.State), Sealed: v.Sealed}
		if vr.StatusDate, err = nanos(v.StatusDate); err != nil {
			return nil, fmt.Errorf("encode key %s: version %d: statusDate: %w", k.Tag, v.Number, err)
		}
		if vr.Created, err = nanos(v.Created); err != nil {
			return nil, fmt.Errorf("encode key %s: version %d: created: %w", k.Tag, v.Number, err)
		}
		r.Versions[i] = vr
	}
	r.ACLEnabled, r.AllowedIPs = k.ACLEnabled, k.AllowedIPs
	if g := k.TokenGen; g.ID != "" || g.Active || len(g.SealedSecret) > 0 || !g.Enabled.IsZero() || !g.Disabled.IsZero() || g.Issued != 0 {
		tr := &tokenGenRecord{ID: g.ID, Active: g.Active, SealedSecret: g.SealedSecret, Issued: g.Issued}
		if tr.Enabled, err = nanos(g.Enabled); err != nil {
			return nil, fmt.Errorf("encode key %s: token generator enabled: %w", k.Tag, err)
		}
		if tr.Disabled, err = nanos(g.Disabled); err != nil {
			return nil, fmt.Errorf("encode key %s: token generator disabled: %w", k.Tag, err)
		}
		r.TokenGen = tr
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", k.Tag, err)
	}
	return b, nil
}

// UnmarshalKey decodes a record written by MarshalKey. The result shares no
// memory with b.
func UnmarshalKey(b []byte) (*nkms.Key, error) {
	var r keyRecord
	if err := decode(b, &r, &r.Format, "key"); err != nil {
		return nil, err
	}
	k := &nkms.Key{
		ID: r.ID, Tag: r.Tag, Keystore: r.Keystore, Name: r.Name,
		Type: nkms.KeyType(r.Type), Protection: nkms.Protection(r.Protection), Memo: r.Memo, Convergent: r.Convergent,
		State:      nkms.State(r.State),
		StatusDate: fromNanos(r.StatusDate), DestroyDate: fromNanos(r.DestroyDate), Registered: fromNanos(r.Registered),
		AutoRotation: r.AutoRotation, RotationPeriod: r.RotationPeriod, RotationBase: fromNanos(r.RotationBase),
		Versions: make([]nkms.Version, len(r.Versions)),
	}
	for i, v := range r.Versions {
		k.Versions[i] = nkms.Version{
			Number: v.Number, State: nkms.State(v.State),
			StatusDate: fromNanos(v.StatusDate), Created: fromNanos(v.Created), Sealed: v.Sealed,
		}
	}
	k.ACLEnabled, k.AllowedIPs = r.ACLEnabled, r.AllowedIPs
	if g := r.TokenGen; g != nil {
		k.TokenGen = nkms.TokenGenerator{ID: g.ID, Active: g.Active, SealedSecret: g.SealedSecret,
			Enabled: fromNanos(g.Enabled), Disabled: fromNanos(g.Disabled), Issued: g.Issued}
	}
	return k, nil
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

// decode unmarshals b into rec and checks its format. When b does not parse
// as a format-1 record it still reports an unknown format as such.
func decode(b []byte, rec any, format *int, what string) error {
	if err := json.Unmarshal(b, rec); err != nil {
		var h header
		if json.Unmarshal(b, &h) == nil && h.Format != Format {
			return fmt.Errorf("decode %s record: %w %d", what, ErrUnknownFormat, h.Format)
		}
		return fmt.Errorf("decode %s record: %w", what, safeJSONError(err))
	}
	if *format != Format {
		return fmt.Errorf("decode %s record: %w %d", what, ErrUnknownFormat, *format)
	}
	return nil
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
