package nkms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/keylock"
)

// DefaultDeletionWindow is how long a key waits in REVOKE before it is destroyed.
const DefaultDeletionWindow = 72 * time.Hour

// Service implements every API operation once, independent of HTTP. Each
// method takes the authenticated Caller; a key of another keystore answers
// exactly like a key that does not exist.
type Service struct {
	Store          Store
	Root           *crypto.RootKey
	Now            func() time.Time
	DeletionWindow time.Duration
	Log            *slog.Logger

	// Recorder writes usage logs in the background; nil writes them at once.
	Recorder *Recorder
	// ActivityRetention is how long usage-log entries are kept (0: the default).
	ActivityRetention time.Duration
	// ActivityPerKey caps a key's usage-log entries (0: the default).
	ActivityPerKey int
	// Heavy bounds the expensive crypto operations running at once
	// (heavy.go); nil runs them all at once, unbounded.
	Heavy *HeavyPool
	// AllowMaterialExport lets ExportSeed hand out key material and
	// secrets in plaintext (nkms server --allow-material-export).
	AllowMaterialExport bool
	// DevClock, when set, is the clock that AdvanceClock moves
	// (service_clock.go); Now must then be DevClock.Now.
	DevClock *DevClock
	// HSM keeps the versions of new COMMON_HSM keys (hsm.go); nil: none.
	HSM HSM
	// HSMEmulate accepts COMMON_HSM keys without an HSM, kept in software
	// like BASIC ones (--hsm-emulate-software, --dev); without it and an
	// HSM they are refused.
	HSMEmulate bool

	keys keyCache // unsealed key versions (keycache.go)
	// hsmUnsupported holds the hsmKinds that HSM cannot keep (hsm.go).
	hsmUnsupported sync.Map
	macs           macCache // keyed HMACs of access-key secrets (maccache.go)
	// rotations serialises the rotations of each key in this process.
	rotations keylock.Locks
}

// Caller is who makes a request: an access key and the keystore it sees.
// For a token call, AccessKey is the access key that issued the token; only
// AuthenticateToken makes token callers (their token fields are unexported).
type Caller struct {
	AccessKey string
	Keystore  int64
	Role      Role
	Token     bool   // authenticated with a key token, not a signature
	IP        string // client address, for usage logs and the IP ACL of token calls

	tokenKey  Tag    // the key a token caller's token is for
	tokenType string // AccessToken or RefreshToken
}

// now is the service clock at the millisecond precision of the wire.
func (s *Service) now() time.Time { return s.Now().Truncate(time.Millisecond) }

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// authorize checks caller c against the role × operation table (role.go)
// for operation act on key tag (the zero Tag for none): the role must allow act, and a
// key token may act only on its own key. A refusal of a logged operation on
// a key of the caller's keystore enters the key's usage log, marked as a
// refusal.
func (s *Service) authorize(ctx context.Context, c Caller, act Action, tag Tag) error {
	if c.Allows(act) && (!c.Token || c.tokenKey == tag) {
		return nil
	}
	err := Errorf(PermissionDenied, "the role %s of this access key does not allow %s", c.Role, act)
	if c.Token {
		err = Errorf(PermissionDenied, "a key token does not allow %s on this key", act)
	}
	if act.Logged() && !tag.IsZero() {
		if k, gerr := s.Store.Get(ctx, tag.s); gerr == nil && k.Keystore == c.Keystore {
			s.recordCall(ctx, c, act, tag, 0, err)
		}
	}
	return err
}

// call runs one logged operation on key tag for c: it authorizes c, runs
// fn, and records the call in the key's usage log with its outcome. A call
// on a key that is not the caller's (ErrKeyNotFound) is no one's usage and
// is not logged; so fn must look the key up (get, update) before it
// validates anything else of the request.
func call[T any](ctx context.Context, s *Service, c Caller, act Action, tag Tag, fn func() (T, error)) (T, error) {
	if err := s.authorize(ctx, c, act, tag); err != nil {
		var zero T
		return zero, err
	}
	v, err := fn()
	if !errors.Is(err, ErrKeyNotFound) {
		s.recordCall(ctx, c, act, tag, usedVersion(v), err)
	}
	return v, err
}

// usedVersion is the key version a call's result names (the usage log's
// keyVersion): that of the crypto operations' results, 0 for any other. A
// type switch rather than an interface with a keyVersion method: calling a
// method through an interface made every call's result escape to the heap.
func usedVersion(v any) int {
	switch r := v.(type) {
	case Ciphertexts:
		return r.Version
	case Plaintexts:
		return r.Version
	case Signature:
		return r.Version
	case Verification:
		return r.Version
	case PublicKey:
		return r.Version
	case *CustomKey:
		if r != nil {
			return r.Version
		}
	}
	return 0
}

// CreateKeyInput is what Create Key takes. RotationPeriod 0 means the default.
type CreateKeyInput struct {
	Name           string
	Type           KeyType
	Protection     Protection
	Memo           string
	Convergent     bool
	AutoRotation   bool
	RotationPeriod int
}

// CreateKey makes a new key with version 1 in the caller's keystore.
func (s *Service) CreateKey(ctx context.Context, c Caller, in CreateKeyInput) (*Key, error) {
	if err := s.authorize(ctx, c, ActCreateKey, Tag{}); err != nil {
		return nil, err
	}
	if err := ValidateName(in.Name); err != nil {
		return nil, err
	}
	if !in.Type.Valid() {
		return nil, invalid("keyType must be AES256, RSA2048 or ECDSA")
	}
	if in.Protection == "" {
		in.Protection = ProtectionBasic
	}
	if !in.Protection.Valid() {
		return nil, invalid("protectionType must be BASIC or COMMON_HSM")
	}
	if err := ValidateMemo(in.Memo); err != nil {
		return nil, err
	}
	if in.Convergent && in.Type != AES256 {
		return nil, invalid("isConvergent is allowed only for AES256 keys")
	}
	if err := s.checkProtection(in.Protection); err != nil {
		return nil, err
	}
	if in.RotationPeriod == 0 {
		in.RotationPeriod = DefaultRotationPeriod
	}
	if err := ValidateRotationPeriod(in.RotationPeriod); err != nil {
		return nil, err
	}
	tag, err := newTag()
	if err != nil {
		return nil, err
	}
	sealed, undo, err := s.newVersion(in.Type, in.Protection, in.Convergent, tag, 1)
	if err != nil {
		return nil, err
	}
	now := s.now()
	k := &Key{
		Tag: tag.s, Keystore: c.Keystore, Name: in.Name, Type: in.Type, Protection: in.Protection,
		Memo: in.Memo, Convergent: in.Convergent,
		State: StateEnable, StatusDate: now, Registered: now,
		AutoRotation: in.AutoRotation, RotationPeriod: in.RotationPeriod,
		Versions: []Version{{Number: 1, State: StateEnable, StatusDate: now, Created: now, Sealed: sealed}},
	}
	if in.AutoRotation {
		k.RotationBase = now
	}
	k, err = s.Store.Create(ctx, k)
	if err == nil {
		s.recordCall(ctx, c, ActCreateKey, tag, 1, nil)
	} else if undo != nil {
		undo()
	}
	return k, err
}

// newMaterial generates fresh material of type t and seals it for tag and
// version. RSA-2048 generation (tens to hundreds of milliseconds of CPU,
// varying with the prime search) stays outside the Heavy pool: behind its
// 100 ms queue deadline, creates and rotations of RSA keys failed with 503
// as soon as two ran at once (the chaos tests showed it); they are rare
// management calls, bounded by the rate limits instead.
func (s *Service) newMaterial(t KeyType, tag Tag, version int) ([]byte, error) {
	m, err := crypto.GenerateMaterial(crypto.Algorithm(t))
	if err != nil {
		return nil, fmt.Errorf("generate key material: %w", err)
	}
	sealed, err := s.Root.Seal(m, crypto.SealAD(tag.s, version))
	clear(m)
	if err != nil {
		return nil, fmt.Errorf("seal key material: %w", err)
	}
	return sealed, nil
}

// MaxPageSize is the largest page of Get Key List.
const MaxPageSize = 200

// ListKeys returns one page of the caller's keys, newest first.
func (s *Service) ListKeys(ctx context.Context, c Caller, pageNo, pageSize int) ([]*Key, int, error) {
	if err := s.authorize(ctx, c, ActListKeys, Tag{}); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 {
		return nil, 0, invalid("pageNo must be at least 1")
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return nil, 0, invalid("pageSize must be 1-%d", MaxPageSize)
	}
	return s.Store.List(ctx, c.Keystore, pageNo, pageSize)
}

// GetKey returns one of the caller's keys (key info, versions, IP ACL and
// token generator are all reads of it).
func (s *Service) GetKey(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	if err := s.authorize(ctx, c, ActGetKey, tag); err != nil {
		return nil, err
	}
	return s.get(ctx, c, tag)
}

// get returns one of the caller's keys: a key of another keystore is
// ErrKeyNotFound, and a token call from outside the key's enabled IP ACL is
// Forbidden (decisions.md D3).
func (s *Service) get(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	k, err := s.Store.Get(ctx, tag.s)
	if err != nil {
		return nil, err
	}
	if k.Keystore != c.Keystore {
		return nil, ErrKeyNotFound
	}
	if c.Token && !k.AllowsIP(parseIP(c.IP)) {
		return nil, errOutsideACL
	}
	return k, nil
}

// errOutsideACL refuses a token call from outside the key's IP ACL.
var errOutsideACL = &Error{Code: Forbidden, Message: "Forbidden"}

// update applies fn to one of the caller's keys atomically.
func (s *Service) update(ctx context.Context, c Caller, tag Tag, fn func(*Key) error) (*Key, error) {
	return s.Store.Update(ctx, tag.s, func(k *Key) error {
		if k.Keystore != c.Keystore {
			return ErrKeyNotFound
		}
		return fn(k)
	})
}

// change is a logged operation that changes one of the caller's keys with fn.
func (s *Service) change(ctx context.Context, c Caller, act Action, tag Tag, fn func(*Key) error) (*Key, error) {
	return call(ctx, s, c, act, tag, func() (*Key, error) { return s.update(ctx, c, tag, fn) })
}

// EnableKey enables a DISABLE key.
func (s *Service) EnableKey(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActEnableKey, tag, func(k *Key) error { return k.Enable(now) })
}

// DisableKey disables an ENABLE key.
func (s *Service) DisableKey(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActDisableKey, tag, func(k *Key) error { return k.Disable(now) })
}

// RequestDeletion puts a key into REVOKE for the deletion window.
func (s *Service) RequestDeletion(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	window := s.DeletionWindow
	if window <= 0 {
		window = DefaultDeletionWindow
	}
	return s.change(ctx, c, ActRequestDeletion, tag, func(k *Key) error { return k.RequestDeletion(now, window) })
}

// CancelDeletion returns a REVOKE key to DISABLE.
func (s *Service) CancelDeletion(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActCancelDeletion, tag, func(k *Key) error { return k.CancelDeletion(now) })
}

// DeleteKey destroys a REVOKE key at once.
func (s *Service) DeleteKey(ctx context.Context, c Caller, tag Tag) error {
	_, err := call(ctx, s, c, ActDeleteKey, tag, func() (struct{}, error) {
		return struct{}{}, s.deleteKey(ctx, tag.s, func(k *Key) error {
			if k.Keystore != c.Keystore {
				return ErrKeyNotFound
			}
			return k.CheckDelete()
		})
	})
	if err == nil {
		s.log().InfoContext(ctx, "key destroyed", "keyTag", tag, "by", c.AccessKey)
	}
	return err
}

// UpdateName renames a key; names are unique per keystore.
func (s *Service) UpdateName(ctx context.Context, c Caller, tag Tag, name string) (*Key, error) {
	return s.change(ctx, c, ActUpdateKeyName, tag, func(k *Key) error { return k.SetName(name) })
}

// UpdateMemo changes a key's memo.
func (s *Service) UpdateMemo(ctx context.Context, c Caller, tag Tag, memo string) (*Key, error) {
	return s.change(ctx, c, ActUpdateMemo, tag, func(k *Key) error { return k.SetMemo(memo) })
}

// EnableAutoRotation turns on auto rotation with the key's stored period.
func (s *Service) EnableAutoRotation(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActEnableAutoRotation, tag, func(k *Key) error { return k.EnableAutoRotation(now) })
}

// DisableAutoRotation turns off auto rotation.
func (s *Service) DisableAutoRotation(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return s.change(ctx, c, ActDisableAutoRotation, tag, func(k *Key) error { return k.DisableAutoRotation() })
}

// UpdateRotationPeriod changes the period of an enabled auto rotation.
func (s *Service) UpdateRotationPeriod(ctx context.Context, c Caller, tag Tag, days int) (*Key, error) {
	return s.change(ctx, c, ActUpdateRotationPeriod, tag, func(k *Key) error { return k.SetRotationPeriod(days) })
}

// ListVersions returns one of the caller's keys for its version list.
func (s *Service) ListVersions(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	if err := s.authorize(ctx, c, ActListVersions, tag); err != nil {
		return nil, err
	}
	return s.get(ctx, c, tag)
}

// SetVersionState enables or disables one version of a key.
func (s *Service) SetVersionState(ctx context.Context, c Caller, tag Tag, version int, st State) (*Version, error) {
	act := ActEnableKeyVersion
	if st != StateEnable {
		act = ActDisableKeyVersion
	}
	var out Version
	now := s.now()
	_, err := s.change(ctx, c, act, tag, func(k *Key) error {
		v, err := k.SetVersionState(version, st, now)
		if err == nil {
			out = *v
			out.Sealed = nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// maxRotationAttempts bounds rotate's retries when other nodes keep taking
// the next version number.
const maxRotationAttempts = 10

// errVersionRace makes rotate retry when another rotation took the version number.
var errVersionRace = errors.New("version number taken by a concurrent rotation")

// Rotate adds a new current version to an ENABLE key (manual rotation).
func (s *Service) Rotate(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return call(ctx, s, c, ActRotateKey, tag, func() (*Key, error) {
		return s.rotate(ctx, tag, func(k *Key, now time.Time, sealed []byte) error {
			if k.Keystore != c.Keystore {
				return ErrKeyNotFound
			}
			_, err := k.Rotate(now, sealed)
			return err
		})
	})
}

// rotate generates and seals material for the next version outside the store
// transaction, then lets apply add it; it retries if a concurrent rotation
// took the version number, because the version is part of the sealing AD.
// Rotations of one key are serialised within the process, so only another
// node (a shared store) can take the number; past maxRotationAttempts the
// caller gets Conflict, never a 500.
func (s *Service) rotate(ctx context.Context, tag Tag, apply func(*Key, time.Time, []byte) error) (*Key, error) {
	unlock, err := s.rotations.Lock(ctx, tag.s)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		cur, err := s.Store.Get(ctx, tag.s)
		if err != nil {
			return nil, err
		}
		next := cur.Current() + 1
		now := s.now()
		// Dry run on a copy: refuse before paying for key generation.
		if err := apply(cur.Clone(), now, nil); err != nil {
			return nil, err
		}
		sealed, undo, err := s.newVersion(cur.Type, cur.Protection, cur.Convergent, tag, next)
		if err != nil {
			return nil, err
		}
		k, err := s.Store.Update(ctx, tag.s, func(k *Key) error {
			if k.Current()+1 != next {
				return errVersionRace
			}
			return apply(k, now, sealed)
		})
		if err != nil && undo != nil {
			undo()
		}
		if errors.Is(err, errVersionRace) {
			if attempt < maxRotationAttempts {
				continue
			}
			return nil, Errorf(Conflict, "the key was rotated concurrently; retry")
		}
		return k, err
	}
}
