package nkms

import (
	"fmt"
	"time"
)

// Op is an operation whose permission depends on the key's state (decisions.md D6).
type Op string

// Operations of the D6 table.
const (
	OpRead           Op = "read"
	OpCrypto         Op = "crypto" // encrypt, decrypt, re-encrypt, custom key, sign, verify, public key
	OpEnable         Op = "enable"
	OpDisable        Op = "disable"
	OpRotate         Op = "rotate"  // manual rotation
	OpVersion        Op = "version" // version enable/disable
	OpSettings       Op = "settings"
	OpRequestDelete  Op = "request-deletion"
	OpCancelDelete   Op = "cancel-deletion"
	OpDelete         Op = "delete"
	OpAutoRotateTick Op = "auto-rotate" // the scheduler's rotation
	OpSettingsV3     Op = "settings-v3" // settings changes through API 3.0 (D9)
)

// allowed is decisions.md D6 as a table: op → the states in which it is permitted.
var allowed = map[Op][]State{
	OpRead:           {StateEnable, StateDisable, StateRevoke},
	OpCrypto:         {StateEnable},
	OpEnable:         {StateEnable, StateDisable},
	OpDisable:        {StateEnable, StateDisable},
	OpRotate:         {StateEnable},
	OpVersion:        {StateEnable},
	OpSettings:       {StateEnable, StateDisable},
	OpRequestDelete:  {StateEnable, StateDisable},
	OpCancelDelete:   {StateRevoke},
	OpDelete:         {StateRevoke},
	OpAutoRotateTick: {StateEnable, StateDisable},
	OpSettingsV3:     {StateEnable},
}

// Allowed returns nil when op is permitted in state s, and ErrInvalidStatus otherwise.
func Allowed(s State, op Op) error {
	for _, ok := range allowed[op] {
		if ok == s {
			return nil
		}
	}
	return ErrInvalidStatus
}

// Enable makes the key usable again. Enabling an enabled key changes nothing.
func (k *Key) Enable(now time.Time) error {
	if err := Allowed(k.State, OpEnable); err != nil {
		return err
	}
	if k.State != StateEnable {
		k.State, k.StatusDate = StateEnable, now
	}
	return nil
}

// Disable stops all crypto with the key. Disabling a disabled key changes nothing.
func (k *Key) Disable(now time.Time) error {
	if err := Allowed(k.State, OpDisable); err != nil {
		return err
	}
	if k.State != StateDisable {
		k.State, k.StatusDate = StateDisable, now
	}
	return nil
}

// RequestDeletion puts the key into REVOKE; it is destroyed after window.
func (k *Key) RequestDeletion(now time.Time, window time.Duration) error {
	if err := Allowed(k.State, OpRequestDelete); err != nil {
		return err
	}
	k.State, k.StatusDate, k.DestroyDate = StateRevoke, now, now.Add(window)
	return nil
}

// CancelDeletion returns a REVOKE key to DISABLE.
func (k *Key) CancelDeletion(now time.Time) error {
	if err := Allowed(k.State, OpCancelDelete); err != nil {
		return err
	}
	k.State, k.StatusDate, k.DestroyDate = StateDisable, now, time.Time{}
	return nil
}

// CheckDelete reports whether the key may be deleted now by an explicit request.
func (k *Key) CheckDelete() error { return Allowed(k.State, OpDelete) }

// CheckPurge reports whether the scheduler may destroy the key at now: it must
// still be REVOKE and its destroyDate must have passed. It is called inside
// the store's transaction, so a cancel that won the race keeps the key.
func (k *Key) CheckPurge(now time.Time) error {
	if k.State != StateRevoke || now.Before(k.DestroyDate) {
		return ErrInvalidStatus
	}
	return nil
}

// ErrTooManyVersions refuses the rotation of a key that has MaxVersions
// versions (400 INVALID_REQUEST on the wire).
var ErrTooManyVersions = &Error{Code: Invalid,
	Message: fmt.Sprintf("the key has reached %d versions, the most a key may have; create a new key", MaxVersions)}

// Rotate adds a new current version with the given sealed material (manual rotation).
// Manual rotation does not move the next auto rotation. A key with
// MaxVersions versions is not rotated: ErrTooManyVersions.
func (k *Key) Rotate(now time.Time, sealed []byte) (int, error) {
	if err := Allowed(k.State, OpRotate); err != nil {
		return 0, err
	}
	if len(k.Versions) >= MaxVersions {
		return 0, ErrTooManyVersions
	}
	return k.addVersion(now, sealed), nil
}

// AutoRotate adds a new version if auto rotation is due at now, and restarts
// the rotation period. It returns ErrInvalidStatus when nothing is due, and
// ErrTooManyVersions when the key is due but has MaxVersions versions (see
// SkipAutoRotation).
func (k *Key) AutoRotate(now time.Time, sealed []byte) (int, error) {
	if err := k.autoRotationDue(now); err != nil {
		return 0, err
	}
	if len(k.Versions) >= MaxVersions {
		return 0, ErrTooManyVersions
	}
	k.RotationBase = now
	return k.addVersion(now, sealed), nil
}

// SkipAutoRotation restarts the rotation period of a key whose auto rotation
// is due at now but that has MaxVersions versions, without adding one: the
// scheduler's answer to ErrTooManyVersions, so that such a key is tried
// again a period later rather than on every pass. Auto rotation stays on (the
// owner decides what to do with the key), and nextRotationDate shows the
// next try. It returns ErrInvalidStatus when nothing is due or the key may
// still rotate.
func (k *Key) SkipAutoRotation(now time.Time) error {
	if err := k.autoRotationDue(now); err != nil {
		return err
	}
	if len(k.Versions) < MaxVersions {
		return ErrInvalidStatus
	}
	k.RotationBase = now
	return nil
}

// autoRotationDue returns nil when the scheduler may auto-rotate k at now.
func (k *Key) autoRotationDue(now time.Time) error {
	if err := Allowed(k.State, OpAutoRotateTick); err != nil {
		return err
	}
	if next, ok := k.NextRotation(); !ok || now.Before(next) {
		return ErrInvalidStatus
	}
	return nil
}

func (k *Key) addVersion(now time.Time, sealed []byte) int {
	n := len(k.Versions) + 1
	k.Versions = append(k.Versions, Version{Number: n, State: StateEnable, StatusDate: now, Created: now, Sealed: sealed})
	return n
}

// SetName renames the key. Uniqueness is the store's to enforce.
func (k *Key) SetName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	k.Name = name
	return nil
}

// SetMemo changes the memo.
func (k *Key) SetMemo(memo string) error {
	if err := ValidateMemo(memo); err != nil {
		return err
	}
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	k.Memo = memo
	return nil
}

// EnableAutoRotation turns auto rotation on with the stored period, counting
// from now. Enabling it again changes nothing.
func (k *Key) EnableAutoRotation(now time.Time) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if !k.AutoRotation {
		k.AutoRotation, k.RotationBase, k.RotationPeriodKept = true, now, false
	}
	return nil
}

// DisableAutoRotation turns auto rotation off; the period is kept.
func (k *Key) DisableAutoRotation() error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	k.AutoRotation, k.RotationBase, k.RotationPeriodKept = false, time.Time{}, false
	return nil
}

// SetRotationPeriod changes the period of an enabled auto rotation.
func (k *Key) SetRotationPeriod(days int) error {
	if err := ValidateRotationPeriod(days); err != nil {
		return err
	}
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if !k.AutoRotation {
		return ErrInvalidStatus
	}
	k.RotationPeriod = days
	return nil
}

// SetVersionState enables or disables version n. The current version cannot be disabled.
func (k *Key) SetVersionState(n int, s State, now time.Time) (*Version, error) {
	if err := Allowed(k.State, OpVersion); err != nil {
		return nil, err
	}
	v, err := k.Version(n)
	if err != nil {
		return nil, err
	}
	if s == StateDisable && n == k.Current() {
		return nil, ErrInvalidStatus
	}
	if v.State != s {
		v.State, v.StatusDate = s, now
	}
	return v, nil
}

// CryptoVersion returns version n for a crypto operation: the key must be
// ENABLE and the version must exist and be enabled.
func (k *Key) CryptoVersion(n int) (*Version, error) {
	if err := Allowed(k.State, OpCrypto); err != nil {
		return nil, err
	}
	v, err := k.Version(n)
	if err != nil {
		return nil, err
	}
	if v.State != StateEnable {
		return nil, ErrInvalidStatus
	}
	return v, nil
}
