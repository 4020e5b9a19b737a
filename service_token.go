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

// newTokenGenerator draws an id and a sealed secret for a generator of tag.
func (s *Service) newTokenGenerator(tag Tag) (string, []byte, error) {
	idb, err := crypto.RandomBytes(20)
	if err != nil {
		return "", nil, err
	}
	id := hex.EncodeToString(idb)
	secret, err := crypto.RandomBytes(32)
	if err != nil {
		return "", nil, err
	}
	sealed, err := s.Root.Seal(secret, crypto.SealTokenGeneratorAD(tag.s, id))
	clear(secret)
	if err != nil {
		return "", nil, fmt.Errorf("seal token generator secret: %w", err)
	}
	return id, sealed, nil
}

// CreateTokenGenerator activates the key's token generator.
func (s *Service) CreateTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return s.installTokenGenerator(ctx, c, ActCreateTokenGenerator, tag, (*Key).CreateTokenGenerator)
}

// ReplaceTokenGenerator replaces the key's token generator; every token it issued stops working.
func (s *Service) ReplaceTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return s.installTokenGenerator(ctx, c, ActUpdateTokenGenerator, tag, (*Key).ReplaceTokenGenerator)
}

func (s *Service) installTokenGenerator(ctx context.Context, c Caller, act Action, tag Tag, op func(*Key, time.Time, string, []byte) error) (*Key, error) {
	return call(ctx, s, c, act, tag, func() (*Key, error) {
		id, sealed, err := s.newTokenGenerator(tag)
		if err != nil {
			return nil, err
		}
		now := s.now()
		return s.update(ctx, c, tag, func(k *Key) error { return op(k, now, id, sealed) })
	})
}

// DeleteTokenGenerator deactivates the key's token generator; every token it issued stops working.
func (s *Service) DeleteTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActDeleteTokenGenerator, tag, func(k *Key) error { return k.DeleteTokenGenerator(now) })
}

// TokenSet is a refresh token and an access token.
type TokenSet struct {
	Access, Refresh string
}

// IssueTokenSet issues an access token and a refresh token for the key, with
// the caller as their subject: Create Token Set for an access key, Renew
// Token Set for a refresh-token caller.
func (s *Service) IssueTokenSet(ctx context.Context, c Caller, tag Tag, access, refresh Lifetime) (*TokenSet, error) {
	act := ActCreateTokenSet
	if c.Token {
		act = ActRenewTokenSet
	}
	return call(ctx, s, c, act, tag, func() (*TokenSet, error) {
		toks, err := s.issue(ctx, c, tag, []issueSpec{{token.Access, access, DefaultAccessTokenHours}, {token.Refresh, refresh, DefaultRefreshTokenHours}})
		if err != nil {
			return nil, err
		}
		return &TokenSet{Access: toks[0], Refresh: toks[1]}, nil
	})
}

// IssueAccessToken issues one access token for the key (with a refresh token).
func (s *Service) IssueAccessToken(ctx context.Context, c Caller, tag Tag, access Lifetime) (string, error) {
	return call(ctx, s, c, ActCreateAccessToken, tag, func() (string, error) {
		toks, err := s.issue(ctx, c, tag, []issueSpec{{token.Access, access, DefaultAccessTokenHours}})
		if err != nil {
			return "", err
		}
		return toks[0], nil
	})
}

type issueSpec struct {
	typ      string
	lifetime Lifetime
	def      int
}

func (s *Service) issue(ctx context.Context, c Caller, tag Tag, specs []issueSpec) ([]string, error) {
	typs := make([]string, len(specs))
	for i, sp := range specs {
		typs[i] = sp.typ
	}
	toks, _, err := s.issueTokens(ctx, c, tag, typs, func(now time.Time) ([]time.Time, error) {
		exp := make([]time.Time, len(specs))
		for i, sp := range specs {
			var err error
			if exp[i], err = sp.lifetime.expiry(now, sp.def); err != nil {
				return nil, err
			}
		}
		return exp, nil
	}, func(k *Key) error { return Allowed(k.State, OpSettings) })
	return toks, err
}

// issueTokens signs tokens of types typs for the key, expiring when
// expiries says (a zero time: never), if check accepts the key and its
// generator is active. It returns the tokens and their expiries.
func (s *Service) issueTokens(ctx context.Context, c Caller, tag Tag, typs []string, expiries func(now time.Time) ([]time.Time, error), check func(*Key) error) ([]string, []time.Time, error) {
	k, err := s.get(ctx, c, tag)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	exp, err := expiries(now)
	if err != nil {
		return nil, nil, err
	}
	if err := check(k); err != nil {
		return nil, nil, err
	}
	g := k.TokenGen
	if !g.Active {
		return nil, nil, ErrInvalidStatus
	}
	secret, err := s.Root.Open(g.SealedSecret, crypto.SealTokenGeneratorAD(k.Tag, g.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("unseal token generator of %s: %w", k.Tag, err)
	}
	defer clear(secret)
	out := make([]string, len(typs))
	for i, typ := range typs {
		cl := token.Claims{KeyTag: k.Tag, GeneratorID: g.ID, Type: typ, Subject: c.AccessKey, Role: string(c.Role), IssuedAt: now, Expires: exp[i]}
		if out[i], err = token.Sign(secret, cl); err != nil {
			return nil, nil, err
		}
	}
	// Count them; a generator replaced meanwhile makes these tokens useless, so refuse.
	if _, err := s.update(ctx, c, tag, func(k *Key) error { return k.countIssued(g.ID, len(typs)) }); err != nil {
		return nil, nil, err
	}
	return out, exp, nil
}

// AuthenticateToken checks a key token of type typ sent to a route of key
// tag from ip: the key's generator must be active and have signed it, it
// must not be expired and must name this key. The caller it returns may do
// only what a token of that type may (role.go) and only on this key; the
// key's IP ACL is checked when the operation reads the key (Service.get),
// so that the refusal is the operation's and enters its usage log.
func (s *Service) AuthenticateToken(ctx context.Context, tag Tag, raw, typ string, ip netip.Addr) (Caller, error) {
	k, err := s.Store.Get(ctx, tag.s)
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
	secret, err := s.Root.Open(g.SealedSecret, crypto.SealTokenGeneratorAD(k.Tag, g.ID))
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
	// The token acts with the role its issuer had when it was issued (D9),
	// narrowed to what tokens do: an issuer with the crypto permission
	// (admin, crypto) makes a crypto token; a role without it, none that
	// works. Tokens issued before tokens carried a role act as crypto.
	role := RoleCrypto
	if cl.Role != "" {
		if r := Role(cl.Role); !r.Valid() {
			return Caller{}, errToken
		} else if !r.Can(PermCrypto) {
			role = r
		}
	}
	return Caller{AccessKey: cl.Subject, Keystore: k.Keystore, Role: role, Token: true, IP: ip.String(),
		tokenKey: tag, tokenType: typ}, nil
}

// parseIP parses a Caller's IP; an invalid one is the zero Addr, which no
// IP ACL allows.
func parseIP(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// SetACL turns a key's IP ACL for token calls on or off.
func (s *Service) SetACL(ctx context.Context, c Caller, tag Tag, on bool) (*Key, error) {
	act := ActEnableACL
	if !on {
		act = ActDisableACL
	}
	return s.change(ctx, c, act, tag, func(k *Key) error { return k.SetACL(on) })
}

// AddACL adds addresses or IPv4 CIDR prefixes to a key's IP ACL.
func (s *Service) AddACL(ctx context.Context, c Caller, tag Tag, ips []string) (*Key, error) {
	return s.change(ctx, c, ActAddACLRule, tag, func(k *Key) error {
		entries, err := parseACL(ips)
		if err != nil {
			return err
		}
		return k.AddACL(entries)
	})
}

// DeleteACL removes addresses or prefixes from a key's IP ACL.
func (s *Service) DeleteACL(ctx context.Context, c Caller, tag Tag, ips []string) (*Key, error) {
	return s.change(ctx, c, ActDeleteACLRule, tag, func(k *Key) error {
		entries, err := parseACL(ips)
		if err != nil {
			return err
		}
		return k.DeleteACL(entries)
	})
}
