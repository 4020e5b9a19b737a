package nkms

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// KeyType is the algorithm family of a key (decisions.md D5).
type KeyType string

// The key types of NAVER Cloud KMS.
const (
	AES256  KeyType = "AES256"
	RSA2048 KeyType = "RSA2048"
	ECDSA   KeyType = "ECDSA"
)

// Valid reports whether t is a known key type.
func (t KeyType) Valid() bool { return t == AES256 || t == RSA2048 || t == ECDSA }

// CanEncrypt reports whether keys of type t encrypt and decrypt.
func (t KeyType) CanEncrypt() bool { return t == AES256 || t == RSA2048 }

// CanSign reports whether keys of type t sign and verify.
func (t KeyType) CanSign() bool { return t == RSA2048 || t == ECDSA }

// MaxPlaintext is the limit on the decoded plaintext of one encrypt request.
func (t KeyType) MaxPlaintext() int {
	if t == RSA2048 {
		return 190
	}
	return 32 * 1024
}

// State is the status of a key or of a key version.
type State string

// Key and version states. Versions use only ENABLE and DISABLE.
const (
	StateEnable  State = "ENABLE"
	StateDisable State = "DISABLE"
	StateRevoke  State = "REVOKE" // pending deletion
)

// Protection is where key material is kept; nkms keeps every kind sealed in its store.
type Protection string

// Protection types accepted at creation.
const (
	ProtectionBasic     Protection = "BASIC"
	ProtectionCommonHSM Protection = "COMMON_HSM"
)

// Valid reports whether p is a known protection type.
func (p Protection) Valid() bool { return p == ProtectionBasic || p == ProtectionCommonHSM }

// Rotation period limits, in days.
const (
	DefaultRotationPeriod = 90
	MinRotationPeriod     = 1
	MaxRotationPeriod     = 730
)

// MaxVersions is the most versions a key may have. A rotation of a key that
// has them all is refused (ErrTooManyVersions), manual or automatic: the
// caller creates a new key instead. It bounds what a key costs to read and
// store (every version is kept, since old ciphertexts name their version),
// and the 2.0 versions answer, which has no paging. NAVER documents no limit
// for its current KMS (an older guide said 100).
const MaxVersions = 1000

// Key is one KMS key with all its versions. It is a plain value: the store
// hands out copies, and state changes go through its methods (state.go).
type Key struct {
	// ID is the key's number in its keystore (keyId on the wire): positive,
	// assigned by the store as 1 + the highest ID it ever gave out in that
	// keystore, so IDs are never reused and later keys have higher ones. It
	// tells a tenant nothing of other keystores.
	ID         int64
	Tag        string
	Keystore   int64
	Name       string
	Type       KeyType
	Protection Protection
	Memo       string
	Convergent bool

	State       State
	StatusDate  time.Time
	DestroyDate time.Time // set only while State is REVOKE
	Registered  time.Time

	AutoRotation   bool
	RotationPeriod int       // days; kept when auto rotation is off
	RotationBase   time.Time // when auto rotation was enabled or the key last auto-rotated
	// RotationPeriodKept: auto rotation was last turned off through API 3.0,
	// which keeps the period visible (periodDays, D9); turned off through
	// 2.0, never enabled or created off, API 3.0 shows periodDays 0.
	RotationPeriodKept bool

	// Versions[i].Number == i+1; the last one is current. Rotation stops at
	// MaxVersions (a key rotated further before the bound existed keeps all
	// its versions).
	Versions []Version

	ACLEnabled bool     // when on, token calls must come from AllowedIPs
	AllowedIPs []string // IPv4 addresses, CIDR prefixes or "*" addresses: canonical from 2.0, as sent from 3.0 (acl.go)

	TokenGen TokenGenerator // the key's token generator (token.go)
}

// Version is one generation of key material.
type Version struct {
	Number     int
	State      State // StateEnable or StateDisable
	StatusDate time.Time
	Created    time.Time // rotatedDate on the wire
	Sealed     []byte    // material sealed under the root key; never plaintext
}

// Clone returns a deep copy of k. The sealed byte slices share one
// allocation (each capped at its length), so that a key of many versions
// costs few allocations to copy.
func (k *Key) Clone() *Key {
	c := *k
	n := len(k.TokenGen.SealedSecret)
	for _, v := range k.Versions {
		n += len(v.Sealed)
	}
	arena := make([]byte, 0, n)
	c.Versions = make([]Version, len(k.Versions))
	for i, v := range k.Versions {
		arena, v.Sealed = cloneInto(arena, v.Sealed)
		c.Versions[i] = v
	}
	_, c.TokenGen.SealedSecret = cloneInto(arena, k.TokenGen.SealedSecret)
	c.AllowedIPs = append([]string(nil), k.AllowedIPs...)
	return &c
}

// cloneInto appends b to arena and returns the copy, or nil for an empty b.
func cloneInto(arena, b []byte) (rest, clone []byte) {
	if len(b) == 0 {
		return arena, nil
	}
	start := len(arena)
	arena = append(arena, b...)
	return arena, arena[start:len(arena):len(arena)]
}

// Current returns the current (latest) version number.
func (k *Key) Current() int { return len(k.Versions) }

// Version returns version n, or ErrVersionNotFound.
func (k *Key) Version(n int) (*Version, error) {
	if n < 1 || n > len(k.Versions) {
		return nil, ErrVersionNotFound
	}
	return &k.Versions[n-1], nil
}

// NextRotation returns when auto rotation is next due; ok is false when
// auto rotation is off.
func (k *Key) NextRotation() (t time.Time, ok bool) {
	if !k.AutoRotation {
		return time.Time{}, false
	}
	return k.RotationBase.Add(time.Duration(k.RotationPeriod) * 24 * time.Hour), true
}

// DueAt returns the earliest time at which the scheduler has work for k
// (destruction or auto rotation); ok is false when it has none. Stores use it
// to index keys by due time so that a scheduler pass does not scan every key.
func (k *Key) DueAt() (t time.Time, ok bool) {
	if k.State == StateRevoke {
		return k.DestroyDate, true
	}
	return k.NextRotation()
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{2,14}$`)

// ValidateName checks the key name rule of decisions.md D4.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return invalid("keyName must be 3-15 letters, digits, '-' or '_', starting with a letter")
	}
	return nil
}

// NameKey is the form of a key name that uniqueness is decided on.
func NameKey(name string) string { return strings.ToLower(name) }

// MaxMemo is the longest memo, in characters.
const MaxMemo = 100

// ValidateMemo checks the memo rule of decisions.md D4.
func ValidateMemo(memo string) error {
	if !utf8.ValidString(memo) || utf8.RuneCountInString(memo) > MaxMemo {
		return invalid("memo must be at most %d characters", MaxMemo)
	}
	return nil
}

// ValidateRotationPeriod checks a rotation period in days.
func ValidateRotationPeriod(days int) error {
	if days < MinRotationPeriod || days > MaxRotationPeriod {
		return invalid("rotationPeriod must be %d-%d days", MinRotationPeriod, MaxRotationPeriod)
	}
	return nil
}
