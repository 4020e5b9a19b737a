package nkms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nkms/nkms/internal/crypto"
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

	keys keyCache // unsealed key versions (keycache.go)
	macs macCache // keyed HMACs of access-key secrets (maccache.go)
	// rotations serialises the rotations of each key in this process.
	rotations keyLocks
}

// Caller is who makes a request: an access key and the keystore it sees.
// For a token call, AccessKey is the access key that issued the token.
type Caller struct {
	AccessKey string
	Keystore  int64
	Role      Role
	Token     bool   // authenticated with a key token, not a signature
	IP        string // client address, for usage logs
}

// now is the service clock at the millisecond precision of the wire.
func (s *Service) now() time.Time { return s.Now().Truncate(time.Millisecond) }

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
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
	sealed, err := s.newMaterial(in.Type, tag, 1)
	if err != nil {
		return nil, err
	}
	now := s.now()
	k := &Key{
		Tag: tag, Keystore: c.Keystore, Name: in.Name, Type: in.Type, Protection: in.Protection,
		Memo: in.Memo, Convergent: in.Convergent,
		State: StateEnable, StatusDate: now, Registered: now,
		AutoRotation: in.AutoRotation, RotationPeriod: in.RotationPeriod,
		Versions: []Version{{Number: 1, State: StateEnable, StatusDate: now, Created: now, Sealed: sealed}},
	}
	if in.AutoRotation {
		k.RotationBase = now
	}
	return s.Store.Create(ctx, k)
}

// newMaterial generates fresh material of type t and seals it for tag and version.
func (s *Service) newMaterial(t KeyType, tag string, version int) ([]byte, error) {
	m, err := crypto.GenerateMaterial(crypto.Algorithm(t))
	if err != nil {
		return nil, fmt.Errorf("generate key material: %w", err)
	}
	sealed, err := s.Root.Seal(m, crypto.SealAD(tag, version))
	clear(m)
	if err != nil {
		return nil, fmt.Errorf("seal key material: %w", err)
	}
	return sealed, nil
}

func newTag() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate keyTag: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// MaxPageSize is the largest page of Get Key List.
const MaxPageSize = 200

// ListKeys returns one page of the caller's keys, newest first.
func (s *Service) ListKeys(ctx context.Context, c Caller, pageNo, pageSize int) ([]*Key, int, error) {
	if pageNo < 1 {
		return nil, 0, invalid("pageNo must be at least 1")
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return nil, 0, invalid("pageSize must be 1-%d", MaxPageSize)
	}
	return s.Store.List(ctx, c.Keystore, pageNo, pageSize)
}

// GetKey returns one of the caller's keys.
func (s *Service) GetKey(ctx context.Context, c Caller, tag string) (*Key, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return nil, err
	}
	k, err := s.Store.Get(ctx, tag)
	if err != nil {
		return nil, err
	}
	if k.Keystore != c.Keystore {
		return nil, ErrKeyNotFound
	}
	return k, nil
}

// update applies fn to one of the caller's keys atomically.
func (s *Service) update(ctx context.Context, c Caller, tag string, fn func(*Key) error) (*Key, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return nil, err
	}
	return s.Store.Update(ctx, tag, func(k *Key) error {
		if k.Keystore != c.Keystore {
			return ErrKeyNotFound
		}
		return fn(k)
	})
}

// EnableKey enables a DISABLE key.
func (s *Service) EnableKey(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return k.Enable(now) })
}

// DisableKey disables an ENABLE key.
func (s *Service) DisableKey(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return k.Disable(now) })
}

// RequestDeletion puts a key into REVOKE for the deletion window.
func (s *Service) RequestDeletion(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	window := s.DeletionWindow
	if window <= 0 {
		window = DefaultDeletionWindow
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.RequestDeletion(now, window) })
}

// CancelDeletion returns a REVOKE key to DISABLE.
func (s *Service) CancelDeletion(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return k.CancelDeletion(now) })
}

// DeleteKey destroys a REVOKE key at once.
func (s *Service) DeleteKey(ctx context.Context, c Caller, tag string) error {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return err
	}
	err = s.Store.Delete(ctx, tag, func(k *Key) error {
		if k.Keystore != c.Keystore {
			return ErrKeyNotFound
		}
		return k.CheckDelete()
	})
	if err == nil {
		s.keys.forget(tag)
		s.log().InfoContext(ctx, "key destroyed", "keyTag", tag, "by", c.AccessKey)
	}
	return err
}

// UpdateName renames a key; names are unique per keystore.
func (s *Service) UpdateName(ctx context.Context, c Caller, tag, name string) (*Key, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.SetName(name) })
}

// UpdateMemo changes a key's memo.
func (s *Service) UpdateMemo(ctx context.Context, c Caller, tag, memo string) (*Key, error) {
	if err := ValidateMemo(memo); err != nil {
		return nil, err
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.SetMemo(memo) })
}

// EnableAutoRotation turns on auto rotation with the key's stored period.
func (s *Service) EnableAutoRotation(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return k.EnableAutoRotation(now) })
}

// DisableAutoRotation turns off auto rotation.
func (s *Service) DisableAutoRotation(ctx context.Context, c Caller, tag string) (*Key, error) {
	return s.update(ctx, c, tag, func(k *Key) error { return k.DisableAutoRotation() })
}

// UpdateRotationPeriod changes the period of an enabled auto rotation.
func (s *Service) UpdateRotationPeriod(ctx context.Context, c Caller, tag string, days int) (*Key, error) {
	if err := ValidateRotationPeriod(days); err != nil {
		return nil, err
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.SetRotationPeriod(days) })
}

// SetVersionState enables or disables one version of a key.
func (s *Service) SetVersionState(ctx context.Context, c Caller, tag string, version int, st State) (*Version, error) {
	if version < 1 {
		return nil, invalid("version must be a positive integer")
	}
	var out Version
	now := s.now()
	_, err := s.update(ctx, c, tag, func(k *Key) error {
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
func (s *Service) Rotate(ctx context.Context, c Caller, tag string) (*Key, error) {
	return s.rotate(ctx, tag, func(k *Key, now time.Time, sealed []byte) error {
		if k.Keystore != c.Keystore {
			return ErrKeyNotFound
		}
		_, err := k.Rotate(now, sealed)
		return err
	})
}

// rotate generates and seals material for the next version outside the store
// transaction, then lets apply add it; it retries if a concurrent rotation
// took the version number, because the version is part of the sealing AD.
// Rotations of one key are serialised within the process, so only another
// node (a shared store) can take the number; past maxRotationAttempts the
// caller gets Conflict, never a 500.
func (s *Service) rotate(ctx context.Context, tag string, apply func(*Key, time.Time, []byte) error) (*Key, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return nil, err
	}
	defer s.rotations.lock(tag)()
	for attempt := 1; ; attempt++ {
		cur, err := s.Store.Get(ctx, tag)
		if err != nil {
			return nil, err
		}
		next := cur.Current() + 1
		now := s.now()
		// Dry run on a copy: refuse before paying for key generation.
		if err := apply(cur.Clone(), now, nil); err != nil {
			return nil, err
		}
		sealed, err := s.newMaterial(cur.Type, tag, next)
		if err != nil {
			return nil, err
		}
		k, err := s.Store.Update(ctx, tag, func(k *Key) error {
			if k.Current()+1 != next {
				return errVersionRace
			}
			return apply(k, now, sealed)
		})
		if errors.Is(err, errVersionRace) {
			if attempt < maxRotationAttempts {
				continue
			}
			return nil, Errorf(Conflict, "the key was rotated concurrently; retry")
		}
		return k, err
	}
}
