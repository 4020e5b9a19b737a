package nkms

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/token"
)

// Token types, as the routes need them.
const (
	AccessToken  = token.Access
	RefreshToken = token.Refresh
)

// errToken is the one answer to a token that does not authenticate.
var errToken = Errorf(Unauthenticated, "invalid or expired token")

// tokenGenAD is the sealing AD of a token generator's secret.
func tokenGenAD(tag, id string) []byte { return []byte("tokengen:" + tag + ":" + id) }

// newTokenGenerator draws an id and a sealed secret for a generator of tag.
func (s *Service) newTokenGenerator(tag string) (string, []byte, error) {
	idb, err := crypto.RandomBytes(20)
	if err != nil {
		return "", nil, err
	}
	id := hex.EncodeToString(idb)
	secret, err := crypto.RandomBytes(32)
	if err != nil {
		return "", nil, err
	}
	sealed, err := s.Root.Seal(secret, tokenGenAD(tag, id))
	clear(secret)
	if err != nil {
		return "", nil, fmt.Errorf("seal token generator secret: %w", err)
	}
	return id, sealed, nil
}

// CreateTokenGenerator activates the key's token generator.
func (s *Service) CreateTokenGenerator(ctx context.Context, c Caller, tag string) (*Key, error) {
	return s.installTokenGenerator(ctx, c, tag, (*Key).CreateTokenGenerator)
}

// ReplaceTokenGenerator replaces the key's token generator; every token it issued stops working.
func (s *Service) ReplaceTokenGenerator(ctx context.Context, c Caller, tag string) (*Key, error) {
	return s.installTokenGenerator(ctx, c, tag, (*Key).ReplaceTokenGenerator)
}

func (s *Service) installTokenGenerator(ctx context.Context, c Caller, tag string, op func(*Key, time.Time, string, []byte) error) (*Key, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return nil, err
	}
	id, sealed, err := s.newTokenGenerator(tag)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return op(k, now, id, sealed) })
}

// DeleteTokenGenerator deactivates the key's token generator; every token it issued stops working.
func (s *Service) DeleteTokenGenerator(ctx context.Context, c Caller, tag string) (*Key, error) {
	now := s.now()
	return s.update(ctx, c, tag, func(k *Key) error { return k.DeleteTokenGenerator(now) })
}

// TokenSet is a refresh token and an access token.
type TokenSet struct {
	Access, Refresh string
}

// IssueTokenSet issues an access token and a refresh token for the key, with
// the caller as their subject.
func (s *Service) IssueTokenSet(ctx context.Context, c Caller, tag string, access, refresh Lifetime) (*TokenSet, error) {
	toks, err := s.issue(ctx, c, tag, []issueSpec{{token.Access, access, DefaultAccessTokenHours}, {token.Refresh, refresh, DefaultRefreshTokenHours}})
	if err != nil {
		return nil, err
	}
	return &TokenSet{Access: toks[0], Refresh: toks[1]}, nil
}

// IssueAccessToken issues one access token for the key.
func (s *Service) IssueAccessToken(ctx context.Context, c Caller, tag string, access Lifetime) (string, error) {
	toks, err := s.issue(ctx, c, tag, []issueSpec{{token.Access, access, DefaultAccessTokenHours}})
	if err != nil {
		return "", err
	}
	return toks[0], nil
}

type issueSpec struct {
	typ      string
	lifetime Lifetime
	def      int
}

func (s *Service) issue(ctx context.Context, c Caller, tag string, specs []issueSpec) ([]string, error) {
	now := s.now()
	exp := make([]time.Time, len(specs))
	for i, sp := range specs {
		var err error
		if exp[i], err = sp.lifetime.expiry(now, sp.def); err != nil {
			return nil, err
		}
	}
	k, err := s.GetKey(ctx, c, tag)
	if err != nil {
		return nil, err
	}
	if err := Allowed(k.State, OpSettings); err != nil {
		return nil, err
	}
	g := k.TokenGen
	if !g.Active {
		return nil, Errorf(InvalidState, "Invalid status")
	}
	secret, err := s.Root.Open(g.SealedSecret, tokenGenAD(k.Tag, g.ID))
	if err != nil {
		return nil, fmt.Errorf("unseal token generator of %s: %w", k.Tag, err)
	}
	defer clear(secret)
	out := make([]string, len(specs))
	for i, sp := range specs {
		cl := token.Claims{KeyTag: k.Tag, GeneratorID: g.ID, Type: sp.typ, Subject: c.AccessKey, IssuedAt: now, Expires: exp[i]}
		if out[i], err = token.Sign(secret, cl); err != nil {
			return nil, err
		}
	}
	// Count them; a generator replaced meanwhile makes these tokens useless, so refuse.
	if _, err := s.update(ctx, c, k.Tag, func(k *Key) error { return k.countIssued(g.ID, len(specs)) }); err != nil {
		return nil, err
	}
	return out, nil
}

// AuthenticateToken checks a key token sent to a route of key tag from ip:
// the key's generator must be active and have signed it, it must not be
// expired, it must name this key and be of type typ. Then the key's IP ACL
// decides (403 FORBIDDEN outside it; the caller is returned with that error,
// for the usage log). The caller may only do crypto (RoleCrypto) in the key's
// keystore.
func (s *Service) AuthenticateToken(ctx context.Context, tag, raw, typ string, ip netip.Addr) (Caller, error) {
	tag, err := NormalizeTag(tag)
	if err != nil {
		return Caller{}, errToken
	}
	k, err := s.Store.Get(ctx, tag)
	if errors.Is(err, ErrKeyNotFound) {
		return Caller{}, errToken
	}
	if err != nil {
		return Caller{}, err
	}
	g := k.TokenGen
	if !g.Active {
		return Caller{}, errToken
	}
	secret, err := s.Root.Open(g.SealedSecret, tokenGenAD(k.Tag, g.ID))
	if err != nil {
		return Caller{}, fmt.Errorf("unseal token generator of %s: %w", k.Tag, err)
	}
	defer clear(secret)
	cl, err := token.Parse(raw, s.Now(), func(gid string) ([]byte, error) {
		if gid != g.ID {
			return nil, errors.New("token of another generator")
		}
		return secret, nil
	})
	if err != nil || cl.KeyTag != k.Tag || cl.Type != typ {
		return Caller{}, errToken
	}
	c := Caller{AccessKey: cl.Subject, Keystore: k.Keystore, Role: RoleCrypto, Token: true, IP: ip.String()}
	if !k.AllowsIP(ip) {
		return c, Errorf(Forbidden, "Forbidden") // the caller too, for the usage log
	}
	return c, nil
}

// SetACL turns a key's IP ACL for token calls on or off.
func (s *Service) SetACL(ctx context.Context, c Caller, tag string, on bool) (*Key, error) {
	return s.update(ctx, c, tag, func(k *Key) error { return k.SetACL(on) })
}

// AddACL adds addresses or IPv4 CIDR prefixes to a key's IP ACL.
func (s *Service) AddACL(ctx context.Context, c Caller, tag string, ips []string) (*Key, error) {
	entries, err := parseACL(ips)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.AddACL(entries) })
}

// DeleteACL removes addresses or prefixes from a key's IP ACL.
func (s *Service) DeleteACL(ctx context.Context, c Caller, tag string, ips []string) (*Key, error) {
	entries, err := parseACL(ips)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, c, tag, func(k *Key) error { return k.DeleteACL(entries) })
}
