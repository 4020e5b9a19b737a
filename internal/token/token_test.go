package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func secrets(m map[string][]byte) func(string) ([]byte, error) {
	return func(gid string) ([]byte, error) {
		if s, ok := m[gid]; ok {
			return s, nil
		}
		return nil, errors.New("unknown generator")
	}
}

func TestSignParse(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := Claims{KeyTag: "kt", GeneratorID: "g1", Type: Access, Subject: "AK", IssuedAt: t0, Expires: t0.Add(time.Hour)}
	raw, err := Sign(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(raw, t0.Add(time.Minute), secrets(map[string][]byte{"g1": secret}))
	if err != nil || got != c {
		t.Fatalf("got %+v %v, want %+v", got, err, c)
	}
	unlimited := c
	unlimited.Expires = time.Time{}
	raw2, _ := Sign(secret, unlimited)
	if got, err := Parse(raw2, t0.Add(100000*time.Hour), secrets(map[string][]byte{"g1": secret})); err != nil || !got.Expires.IsZero() {
		t.Fatalf("unlimited token: %+v %v", got, err)
	}

	parts := strings.Split(raw, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	hs512Header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`))
	for name, tc := range map[string]struct {
		raw string
		now time.Time
		m   map[string][]byte
	}{
		"expired":          {raw, t0.Add(time.Hour), map[string][]byte{"g1": secret}},
		"other secret":     {raw, t0, map[string][]byte{"g1": []byte("another secret of 32 bytes......")}},
		"unknown gid":      {raw, t0, map[string][]byte{"g2": secret}},
		"tampered payload": {parts[0] + "." + parts[1] + "x." + parts[2], t0, map[string][]byte{"g1": secret}},
		"tampered sig":     {parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA", t0, map[string][]byte{"g1": secret}},
		"alg none":         {noneHeader + "." + parts[1] + ".", t0, map[string][]byte{"g1": secret}},
		"alg HS512":        {hs512Header + "." + parts[1] + "." + parts[2], t0, map[string][]byte{"g1": secret}},
		"garbage":          {"not a token", t0, map[string][]byte{"g1": secret}},
		"empty":            {"", t0, map[string][]byte{"g1": secret}},
	} {
		if _, err := Parse(tc.raw, tc.now, secrets(tc.m)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	raw, _ := Sign(secret, Claims{KeyTag: "kt", GeneratorID: "g1", Type: Refresh, Subject: "AK", IssuedAt: t0})
	f.Add(raw)
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Parse(raw, t0, secrets(map[string][]byte{"g1": secret}))
		if err == nil && c.GeneratorID != "g1" {
			t.Fatalf("accepted a token of generator %q", c.GeneratorID)
		}
	})
}

// TestRoleClaim: the issuer's role travels in the token (D9); a token
// without it (issued before tokens carried it) parses with Role "".
func TestRoleClaim(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, role := range []string{"crypto", "admin", ""} {
		c := Claims{KeyTag: "kt", GeneratorID: "g1", Type: Refresh, Subject: "AK", Role: role, IssuedAt: t0}
		raw, err := Sign(secret, c)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
		if has := strings.Contains(string(payload), `"role"`); has != (role != "") {
			t.Errorf("role %q: payload %s", role, payload)
		}
		got, err := Parse(raw, t0, secrets(map[string][]byte{"g1": secret}))
		if err != nil || got != c {
			t.Errorf("role %q: got %+v %v, want %+v", role, got, err, c)
		}
	}
}
