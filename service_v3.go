package nkms

import (
	"context"
)

// Service operations of API 3.0 that no 2.0 operation does the same way
// (ncp-kms-api-v3.md §3.1-3.2, D9). Where 3.0 does what 2.0 does (getKey,
// listKeys, deleteKey, request and cancel deletion, createKeyVersion), its
// adapter calls the 2.0 method; keys, versions and usage logs are shared.

// CreateKeyV3Input is what createKey takes. PeriodDays 0 means the default
// (90 days) when Rotation is on; with Rotation off a period is checked but
// not kept (§3.1.1).
type CreateKeyV3Input struct {
	Name           string
	Type           KeyType
	Protection     Protection
	Memo           *string // nil: none; else sanitised, then 1-100 characters
	Convergent     bool
	Rotation       bool
	PeriodDays     int
	PeriodDaysSent bool
}

// CreateKeyV3 makes a new key as API 3.0 does: protection BASIC only, a
// sanitised memo, the rotation setting required by the caller (the adapter
// checks that it was sent). The refusals name the 3.0 field at fault.
func (s *Service) CreateKeyV3(ctx context.Context, c Caller, in CreateKeyV3Input) (*Key, error) {
	if err := s.authorize(ctx, c, ActCreateKey, Tag{}); err != nil {
		return nil, err
	}
	if err := ValidateName(in.Name); err != nil {
		return nil, FieldErrorf("keyName", "%s", ErrorMessage(err))
	}
	if !in.Type.Valid() {
		return nil, FieldErrorf("keyType", "keyType must be AES256, RSA2048 or ECDSA")
	}
	if in.Protection != ProtectionBasic {
		return nil, FieldErrorf("protectionType", "protectionType must be BASIC")
	}
	memo := ""
	if in.Memo != nil {
		var err error
		if memo, err = ValidateMemoV3(*in.Memo); err != nil {
			return nil, err
		}
	}
	if in.Convergent && in.Type != AES256 {
		return nil, FieldErrorf("convergent", "convergent may be true only for AES256 keys")
	}
	if in.PeriodDaysSent && (in.PeriodDays < MinRotationPeriod || in.PeriodDays > MaxRotationPeriod) {
		return nil, FieldErrorf("rotation.periodDays", "rotation.periodDays must be %d-%d", MinRotationPeriod, MaxRotationPeriod)
	}
	period := 0 // the default
	if in.Rotation {
		period = in.PeriodDays
	}
	return s.CreateKey(ctx, c, CreateKeyInput{
		Name: in.Name, Type: in.Type, Protection: in.Protection, Memo: memo, Convergent: in.Convergent,
		AutoRotation: in.Rotation, RotationPeriod: period,
	})
}

// UpdateKeyV3 applies a merge-patch to one of the caller's keys (updateKey,
// action UpdateKey) in one transaction. An empty patch changes nothing and
// returns the key, in any state.
func (s *Service) UpdateKeyV3(ctx context.Context, c Caller, tag Tag, p KeyPatch) (*Key, error) {
	if p.Empty() {
		return call(ctx, s, c, ActUpdateKey, tag, func() (*Key, error) { return s.get(ctx, c, tag) })
	}
	now := s.now()
	return s.change(ctx, c, ActUpdateKey, tag, func(k *Key) error { return k.UpdateV3(p, now) })
}

// UpdateKeyRotationV3 applies a merge-patch to the rotation settings of one
// of the caller's keys (updateKeyRotation), which must be ENABLE. An empty
// patch changes nothing and returns the key, in any state.
func (s *Service) UpdateKeyRotationV3(ctx context.Context, c Caller, tag Tag, p RotationPatch) (*Key, error) {
	if p.Empty() {
		return call(ctx, s, c, ActUpdateKeyRotation, tag, func() (*Key, error) { return s.get(ctx, c, tag) })
	}
	now := s.now()
	return s.change(ctx, c, ActUpdateKeyRotation, tag, func(k *Key) error { return k.UpdateRotationV3(p, now) })
}

// KeyVersion is one version of a key as API 3.0 shows it, without its
// material.
type KeyVersion struct {
	Version
	Current bool
}

// versionOf returns version v of a key whose current version is current,
// without its material.
func versionOf(v Version, current int) KeyVersion {
	v.Sealed = nil
	return KeyVersion{Version: v, Current: v.Number == current}
}

// CreateKeyVersion rotates one of the caller's keys (createKeyVersion,
// action RotateKey) and returns the new current version.
func (s *Service) CreateKeyVersion(ctx context.Context, c Caller, tag Tag) (KeyVersion, error) {
	k, err := s.Rotate(ctx, c, tag)
	if err != nil {
		return KeyVersion{}, err
	}
	return versionOf(k.Versions[k.Current()-1], k.Current()), nil
}

// ListKeyVersions returns one page of the versions of one of the caller's
// keys, ascending (pageNo from 1), and the key's number of versions. Only
// the page's versions are read from the store.
func (s *Service) ListKeyVersions(ctx context.Context, c Caller, tag Tag, pageNo, pageSize int) ([]KeyVersion, int, error) {
	if err := s.authorize(ctx, c, ActListVersions, tag); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 {
		return nil, 0, FieldErrorf("pageNo", "pageNo must not be negative")
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return nil, 0, FieldErrorf("pageSize", "pageSize must be 1-%d", MaxPageSize)
	}
	if _, err := s.get(ctx, c, tag); err != nil {
		return nil, 0, err
	}
	vs, total, err := s.Store.ListVersions(ctx, tag.s, pageNo, pageSize)
	if err != nil {
		return nil, 0, err
	}
	out := make([]KeyVersion, len(vs))
	for i, v := range vs {
		out[i] = versionOf(v, total) // the current version is the last
	}
	return out, total, nil
}

// GetKeyVersion returns version n of one of the caller's keys.
func (s *Service) GetKeyVersion(ctx context.Context, c Caller, tag Tag, n int) (KeyVersion, error) {
	if err := s.authorize(ctx, c, ActListVersions, tag); err != nil {
		return KeyVersion{}, err
	}
	k, err := s.get(ctx, c, tag)
	if err != nil {
		return KeyVersion{}, err
	}
	v, err := k.Version(n)
	if err != nil {
		return KeyVersion{}, err
	}
	return versionOf(*v, k.Current()), nil
}

// UpdateKeyVersion sets the status of version n of one of the caller's keys
// (updateKeyVersion; actions EnableKeyVersion and DisableKeyVersion); st nil
// ({}) changes nothing and returns the version, in any state: it needs the
// caller's permission to change versions and, changing nothing, is not
// logged (3.0 has no action name of its own for it). A change needs an
// ENABLE key (D6), and the current version's status cannot change
// (InvalidState).
func (s *Service) UpdateKeyVersion(ctx context.Context, c Caller, tag Tag, n int, st *State) (KeyVersion, error) {
	if st == nil {
		if err := s.authorize(ctx, c, ActEnableKeyVersion, tag); err != nil {
			return KeyVersion{}, err
		}
		k, err := s.get(ctx, c, tag)
		if err != nil {
			return KeyVersion{}, err
		}
		v, err := k.Version(n)
		if err != nil {
			return KeyVersion{}, err
		}
		return versionOf(*v, k.Current()), nil
	}
	if *st != StateEnable && *st != StateDisable {
		return KeyVersion{}, FieldErrorf("status", "status must be ENABLED or DISABLED")
	}
	act := ActEnableKeyVersion
	if *st == StateDisable {
		act = ActDisableKeyVersion
	}
	var out KeyVersion
	now := s.now()
	_, err := s.change(ctx, c, act, tag, func(k *Key) error {
		v, err := k.SetVersionState(n, *st, now)
		if err == nil {
			out = versionOf(*v, k.Current())
		}
		return err
	})
	return out, err
}
