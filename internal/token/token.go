// Package token makes and checks the key tokens of nkms (decisions.md D7):
// JWTs signed with HS256 under a key's token-generator secret.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types.
const (
	Access  = "access"
	Refresh = "refresh"
)

// Claims are what a token says. A zero Expires means the token never expires ("UL").
type Claims struct {
	KeyTag      string
	GeneratorID string
	Type        string // Access or Refresh
	Subject     string // the access key that issued it
	// Role is the role of the issuing access key at issue time (D9); the
	// token keeps it. Tokens issued before tokens carried it have "".
	Role     string
	IssuedAt time.Time
	Expires  time.Time
}

type jwtClaims struct {
	KeyTag      string `json:"kt"`
	GeneratorID string `json:"gid"`
	Type        string `json:"typ"`
	Role        string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// ErrInvalid is the answer for every token that does not check out; the cause
// is wrapped for logs, never shown to callers.
var ErrInvalid = errors.New("invalid token")

// Sign returns the token for c, signed with secret.
func Sign(secret []byte, c Claims) (string, error) {
	jc := jwtClaims{KeyTag: c.KeyTag, GeneratorID: c.GeneratorID, Type: c.Type, Role: c.Role,
		RegisteredClaims: jwt.RegisteredClaims{Subject: c.Subject, IssuedAt: jwt.NewNumericDate(c.IssuedAt)}}
	if !c.Expires.IsZero() {
		jc.ExpiresAt = jwt.NewNumericDate(c.Expires)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jc).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Parse checks raw at now: HS256 only, a valid signature under the secret that
// secretFor returns for the token's generator id, and not expired. It returns
// the claims; the caller checks that they fit the request (key, type).
func Parse(raw string, now time.Time, secretFor func(generatorID string) ([]byte, error)) (Claims, error) {
	var jc jwtClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithTimeFunc(func() time.Time { return now }))
	_, err := p.ParseWithClaims(raw, &jc, func(*jwt.Token) (any, error) { return secretFor(jc.GeneratorID) })
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{KeyTag: jc.KeyTag, GeneratorID: jc.GeneratorID, Type: jc.Type, Subject: jc.Subject, Role: jc.Role}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.UTC()
	}
	if jc.ExpiresAt != nil {
		c.Expires = jc.ExpiresAt.UTC()
	}
	return c, nil
}
