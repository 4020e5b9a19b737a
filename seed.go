package nkms

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nkms/nkms/internal/crypto"
)

// Seed declares access keys and keys that a server makes sure exist
// (`nkms server --seed FILE`; internal/seed reads the file). ApplySeed
// creates what is missing and never changes or deletes what exists; an
// existing access key or key whose immutable properties differ from its
// declaration is a conflict (seed_apply.go).
type Seed struct {
	AccessKeys []SeedAccessKey
	Keys       []SeedKey
}

// SeedAccessKey declares an access key. Its identity is AccessKey; its
// secret, keystore and role are immutable.
type SeedAccessKey struct {
	AccessKey string
	SecretKey string // "" in an export without secrets
	Keystore  int64
	Role      Role
}

// String never prints the secret.
func (a SeedAccessKey) String() string {
	return fmt.Sprintf("SeedAccessKey{AccessKey:%s Keystore:%d Role:%s}", a.AccessKey, a.Keystore, a.Role)
}

// GoString is String, so that %#v does not print the secret either.
func (a SeedAccessKey) GoString() string { return a.String() }

// SeedKey declares a key. Its identity is Tag when one is declared, else
// Keystore and Name. Keystore, Type, Protection, Convergent and the
// material of the declared versions are immutable: an existing key that
// differs in one of them is a conflict. Name (when Tag is declared), Memo,
// the rotation settings and Disabled are settings the API changes: a key
// that exists keeps its own, and ApplySeed reports which differ.
type SeedKey struct {
	Keystore   int64
	Name       string
	Type       KeyType
	Protection Protection // "": BASIC
	Convergent bool
	Tag        Tag // zero: a random tag on creation
	// Material holds the key material of versions 1..n (Material[0] is
	// version 1's); empty: version 1 is generated. Each is what
	// internal/crypto generates for Type: 32 bytes for AES256, PKCS#8 DER
	// otherwise.
	Material       [][]byte
	Memo           string
	AutoRotation   bool
	RotationPeriod int // days; 0: the default
	Disabled       bool
}

// String never prints the material.
func (k SeedKey) String() string {
	return fmt.Sprintf("SeedKey{Keystore:%d Name:%s Type:%s Tag:%s Versions:%d}", k.Keystore, k.Name, k.Type, k.Tag, len(k.Material))
}

// GoString is String, so that %#v does not print the material either.
func (k SeedKey) GoString() string { return k.String() }

// label names the declaration in messages: its keystore and name.
func (k *SeedKey) label() string { return fmt.Sprintf("keystore %d, name %q", k.Keystore, k.Name) }

// SeedError is what is wrong with one declaration of a Seed: Section
// ("accessKeys" or "keys") and Index say which, Field which of its fields
// ("" for the whole declaration). Its message never contains a secret or
// key material. internal/seed adds the line of the file.
type SeedError struct {
	Section string
	Index   int
	Label   string // the declaration in words, e.g. `keystore 1, name "orders"`
	Field   string
	Msg     string
}

func (e *SeedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[%d]", e.Section, e.Index)
	if e.Label != "" {
		fmt.Fprintf(&b, " (%s)", e.Label)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Validate checks every declaration on its own and the file as a whole (no
// access key, tag, or name in a keystore declared twice). It returns every
// problem it finds, each a *SeedError (SeedProblems lists them); the error
// matches errors.Is(err, &Error{Code: Invalid}).
func (s *Seed) Validate() error {
	var errs []error
	add := func(section string, i int, label, field, format string, args ...any) {
		errs = append(errs, &SeedError{Section: section, Index: i, Label: label, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	ids := map[string]int{}
	for i, a := range s.AccessKeys {
		label := fmt.Sprintf("accessKey %q", a.AccessKey)
		if !accessKeyRE.MatchString(a.AccessKey) {
			label = ""
			add("accessKeys", i, label, "accessKey", "must be 4-64 letters, digits, '-' or '_'")
		} else if j, dup := ids[a.AccessKey]; dup {
			add("accessKeys", i, label, "accessKey", "declared twice (also accessKeys[%d])", j)
		} else {
			ids[a.AccessKey] = i
		}
		if len(a.SecretKey) < 16 {
			add("accessKeys", i, label, "secretKey", "must be at least 16 characters")
		}
		if a.Keystore < 1 {
			add("accessKeys", i, label, "keystore", "must be a positive integer")
		}
		if !a.Role.Valid() {
			add("accessKeys", i, label, "role", "must be admin, manager, crypto or viewer")
		}
	}
	names := map[string]int{}
	tags := map[Tag]int{}
	for i := range s.Keys {
		k := &s.Keys[i]
		label := k.label()
		if k.Keystore < 1 {
			add("keys", i, label, "keystore", "must be a positive integer")
		}
		if err := ValidateName(k.Name); err != nil {
			add("keys", i, label, "name", "%s", ErrorMessage(err))
		} else if j, dup := names[fmt.Sprint(k.Keystore, "/", NameKey(k.Name))]; dup {
			add("keys", i, label, "name", "declared twice in keystore %d (also keys[%d]; names are compared without case)", k.Keystore, j)
		} else {
			names[fmt.Sprint(k.Keystore, "/", NameKey(k.Name))] = i
		}
		if !k.Tag.IsZero() {
			if j, dup := tags[k.Tag]; dup {
				add("keys", i, label, "tag", "declared twice (also keys[%d])", j)
			} else {
				tags[k.Tag] = i
			}
		}
		typeOK := k.Type.Valid()
		if !typeOK {
			add("keys", i, label, "type", "must be AES256, RSA2048 or ECDSA")
		}
		if k.Protection != "" && !k.Protection.Valid() {
			add("keys", i, label, "protectionType", "must be BASIC or COMMON_HSM")
		}
		if k.Convergent && typeOK && k.Type != AES256 {
			add("keys", i, label, "convergent", "is allowed only for AES256 keys")
		}
		if err := ValidateMemo(k.Memo); err != nil {
			add("keys", i, label, "memo", "%s", ErrorMessage(err))
		}
		if k.RotationPeriod != 0 {
			if err := ValidateRotationPeriod(k.RotationPeriod); err != nil {
				add("keys", i, label, "autoRotation.periodDays", "must be %d-%d days", MinRotationPeriod, MaxRotationPeriod)
			}
		}
		if len(k.Material) > MaxVersions {
			add("keys", i, label, "versions", "at most %d versions", MaxVersions)
		}
		for v, m := range k.Material {
			if !typeOK {
				break
			}
			if err := crypto.ValidateMaterial(crypto.Algorithm(k.Type), m); err != nil {
				add("keys", i, label, materialField(v+1), "not %s key material: %s", k.Type, materialProblem(k.Type))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &seedErrors{errs}
}

// materialField names the field of version n's material in the seed file.
func materialField(n int) string {
	if n == 1 {
		return "material"
	}
	return fmt.Sprintf("versions[%d].material", n-2)
}

// materialProblem says what material of type t must be; fixed text, so that
// no part of a bad material reaches a message.
func materialProblem(t KeyType) string {
	switch t {
	case AES256:
		return "want 32 bytes in Base64"
	case RSA2048:
		return "want the Base64 of the PKCS#8 DER of a 2048-bit RSA private key"
	default:
		return "want the Base64 of the PKCS#8 DER of a P-256 ECDSA private key"
	}
}

// seedErrors is every problem of a Seed: Invalid, and each one is a
// *SeedError that errors.As finds.
type seedErrors struct{ errs []error }

func (e *seedErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s) in the seed:", len(e.errs))
	for _, err := range e.errs {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

func (e *seedErrors) Unwrap() []error { return e.errs }

// Is makes the joined error Invalid for errors.Is(err, &Error{Code: Invalid}).
func (e *seedErrors) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == Invalid
}

// SeedProblems returns the *SeedError values in err (from Validate), for a
// reader that adds where each declaration is.
func SeedProblems(err error) []*SeedError {
	var out []*SeedError
	var joined *seedErrors
	if errors.As(err, &joined) {
		for _, e := range joined.errs {
			var se *SeedError
			if errors.As(e, &se) {
				out = append(out, se)
			}
		}
	}
	return out
}
