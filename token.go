package nkms

import "time"

// Token lifetimes, in hours (ncp-kms-api.md §6.6).
const (
	DefaultAccessTokenHours  = 72
	DefaultRefreshTokenHours = 2160
	MaxTokenHours            = 17520
)

// Lifetime is how long a token lives: Hours, or no expiry when Unlimited ("UL").
// The zero value means the default of the token type.
type Lifetime struct {
	Hours     int
	Unlimited bool
}

// expiry returns when a token issued at now with lifetime l expires (zero: never).
func (l Lifetime) expiry(now time.Time, def int) (time.Time, error) {
	if l.Unlimited {
		return time.Time{}, nil
	}
	h := l.Hours
	if h == 0 {
		h = def
	}
	if h < 1 || h > MaxTokenHours {
		return time.Time{}, invalid("token hours must be 1-%d or \"UL\"", MaxTokenHours)
	}
	return now.Add(time.Duration(h) * time.Hour), nil
}

// TokenGenerator is a key's token generator (ncp-kms-api.md §6.5). Its secret
// signs the key's tokens; replacing or deleting it invalidates them all.
type TokenGenerator struct {
	ID           string // "" when none was ever created
	Active       bool
	SealedSecret []byte // sealed under the root key; nil unless Active
	Enabled      time.Time
	Disabled     time.Time
	Issued       int // tokens issued by the current generator
}

// CreateTokenGenerator installs a new generator when none is active.
func (k *Key) CreateTokenGenerator(now time.Time, id string, sealed []byte) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if k.TokenGen.Active {
		return ErrInvalidStatus
	}
	k.TokenGen = TokenGenerator{ID: id, Active: true, SealedSecret: sealed, Enabled: now}
	return nil
}

// ReplaceTokenGenerator swaps the active generator for a new one.
func (k *Key) ReplaceTokenGenerator(now time.Time, id string, sealed []byte) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if !k.TokenGen.Active {
		return ErrInvalidStatus
	}
	k.TokenGen = TokenGenerator{ID: id, Active: true, SealedSecret: sealed, Enabled: now}
	return nil
}

// DeleteTokenGenerator deactivates the generator and drops its secret.
func (k *Key) DeleteTokenGenerator(now time.Time) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if !k.TokenGen.Active {
		return ErrInvalidStatus
	}
	k.TokenGen.Active, k.TokenGen.SealedSecret, k.TokenGen.Disabled = false, nil, now
	return nil
}

// countIssued records n tokens issued by generator gid, which must still be the active one.
func (k *Key) countIssued(gid string, n int) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	if !k.TokenGen.Active || k.TokenGen.ID != gid {
		return ErrInvalidStatus
	}
	k.TokenGen.Issued += n
	return nil
}
