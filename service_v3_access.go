package nkms

import (
	"context"
	"time"

	"github.com/nkms/nkms/internal/token"
)

// The API 3.0 operations of IP ACLs, token generators and tokens
// (ncp-kms-api-v3.md §3.3-3.4, decisions.md D9). They change the same key
// fields as their 2.0 counterparts and log under the same action names
// where a 2.0 operation does the same; unlike 2.0, every one of them needs
// an ENABLED key (else InvalidState).

// MaxACLEntriesPerCall is how many allowedIps one 3.0 add or remove takes.
const MaxACLEntriesPerCall = 100

// requireEnabled refuses a 3.0 settings change of a key that is not ENABLED.
func requireEnabled(k *Key) error {
	if k.State != StateEnable {
		return ErrInvalidStatus
	}
	return nil
}

// UpdateKeyACL turns a key's IP ACL on or off (updateKeyAcl). A nil enabled
// (the merge patch {}) changes nothing and returns the key as it is; it
// still needs the permission to change the ACL and an ENABLED key.
func (s *Service) UpdateKeyACL(ctx context.Context, c Caller, tag Tag, enabled *bool) (*Key, error) {
	if enabled == nil {
		if err := s.authorize(ctx, c, ActEnableACL, tag); err != nil {
			return nil, err
		}
		k, err := s.get(ctx, c, tag)
		if err != nil {
			return nil, err
		}
		if err := requireEnabled(k); err != nil {
			return nil, err
		}
		return k, nil
	}
	on := *enabled
	act := ActEnableACL
	if !on {
		act = ActDisableACL
	}
	return s.change(ctx, c, act, tag, func(k *Key) error {
		if err := requireEnabled(k); err != nil {
			return err
		}
		k.ACLEnabled = on
		return nil
	})
}

// validateAllowedIPs checks the allowedIps of a 3.0 add or remove: 1-100
// entries, each an entry ValidateACLEntry takes.
func validateAllowedIPs(ips []string) error {
	if len(ips) == 0 || len(ips) > MaxACLEntriesPerCall {
		return FieldErrorf("allowedIps", "allowedIps must hold 1-%d entries", MaxACLEntriesPerCall)
	}
	for _, ip := range ips {
		if err := ValidateACLEntry(ip); err != nil {
			return err
		}
	}
	return nil
}

// AddKeyACLAllowedIPs adds entries to a key's IP ACL exactly as sent
// (addKeyAclAllowedIps); the key holds at most MaxACLEntries.
func (s *Service) AddKeyACLAllowedIPs(ctx context.Context, c Caller, tag Tag, ips []string) (*Key, error) {
	return s.change(ctx, c, ActAddACLRule, tag, func(k *Key) error {
		if err := validateAllowedIPs(ips); err != nil {
			return err
		}
		return k.AddAllowedIPs(ips)
	})
}

// RemoveKeyACLAllowedIPs removes entries from a key's IP ACL by exact string
// (removeKeyAclAllowedIps): all of them, or none when one is not there.
func (s *Service) RemoveKeyACLAllowedIPs(ctx context.Context, c Caller, tag Tag, ips []string) (*Key, error) {
	return s.change(ctx, c, ActDeleteACLRule, tag, func(k *Key) error {
		if err := validateAllowedIPs(ips); err != nil {
			return err
		}
		return k.RemoveAllowedIPs(ips)
	})
}

// ActivateTokenGenerator activates a key's token generator
// (activateKeyTokenGenerator); an active one stays as it is, with its
// secret, and the call succeeds.
func (s *Service) ActivateTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return call(ctx, s, c, ActCreateTokenGenerator, tag, func() (*Key, error) {
		k, err := s.get(ctx, c, tag)
		if err != nil {
			return nil, err
		}
		if err := requireEnabled(k); err != nil {
			return nil, err
		}
		if k.TokenGen.Active {
			return k, nil
		}
		id, sealed, err := s.newTokenGenerator(tag)
		if err != nil {
			return nil, err
		}
		now := s.now()
		return s.update(ctx, c, tag, func(k *Key) error {
			if err := requireEnabled(k); err != nil {
				return err
			}
			if k.TokenGen.Active {
				return nil // activated meanwhile: that one stays
			}
			return k.CreateTokenGenerator(now, id, sealed)
		})
	})
}

// RotateTokenGenerator gives a key's active generator a new id and secret
// (rotateKeyTokenGenerator); every token issued before stops working.
func (s *Service) RotateTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	return s.installTokenGenerator(ctx, c, ActUpdateTokenGenerator, tag, func(k *Key, now time.Time, id string, sealed []byte) error {
		if err := requireEnabled(k); err != nil {
			return err
		}
		return k.ReplaceTokenGenerator(now, id, sealed)
	})
}

// DeactivateTokenGenerator deactivates a key's token generator
// (deactivateKeyTokenGenerator); every token it issued stops working. An
// inactive one stays as it is, and the call succeeds.
func (s *Service) DeactivateTokenGenerator(ctx context.Context, c Caller, tag Tag) (*Key, error) {
	now := s.now()
	return s.change(ctx, c, ActDeleteTokenGenerator, tag, func(k *Key) error {
		if err := requireEnabled(k); err != nil {
			return err
		}
		if !k.TokenGen.Active {
			return nil
		}
		return k.DeleteTokenGenerator(now)
	})
}

// Token lifetimes of API 3.0 (ncp-kms-api-v3.md §3.4.5, D9).
const (
	DefaultAccessTokenMinutes = 4320
	MaxAccessTokenMinutes     = 1051200
)

// TokenLifetimes are the lifetimes a 3.0 token call asks for. A nil
// length is the default; Unlimited tokens never expire and take no length.
type TokenLifetimes struct {
	AccessMinutes    *int
	AccessUnlimited  bool
	RefreshHours     *int
	RefreshUnlimited bool
}

// IssuedTokens are tokens of a 3.0 call with their expiries (zero: never).
// Refresh is "" when only an access token was issued.
type IssuedTokens struct {
	Access, Refresh               string
	AccessExpires, RefreshExpires time.Time
}

// expiry returns when a token issued at now expires: after n units (def
// when n is nil, 1-max), or never when unlimited.
func expiry(now time.Time, n *int, unlimited bool, def, max int, unit time.Duration, field, unlimitedField string) (time.Time, error) {
	if unlimited {
		if n != nil {
			return time.Time{}, FieldErrorf(field, "%s must not be given when %s is true", field, unlimitedField)
		}
		return time.Time{}, nil
	}
	v := def
	if n != nil {
		v = *n
	}
	if v < 1 || v > max {
		return time.Time{}, FieldErrorf(field, "%s must be 1-%d", field, max)
	}
	return now.Add(time.Duration(v) * unit), nil
}

func (l TokenLifetimes) access(now time.Time) (time.Time, error) {
	return expiry(now, l.AccessMinutes, l.AccessUnlimited, DefaultAccessTokenMinutes, MaxAccessTokenMinutes, time.Minute, "accessTokenMinutes", "accessTokenUnlimited")
}

func (l TokenLifetimes) refresh(now time.Time) (time.Time, error) {
	return expiry(now, l.RefreshHours, l.RefreshUnlimited, DefaultRefreshTokenHours, MaxTokenHours, time.Hour, "refreshTokenHours", "refreshTokenUnlimited")
}

// IssueKeyTokens issues an access token and a refresh token for the key
// (issueKeyTokens); they carry the caller's role (D9).
func (s *Service) IssueKeyTokens(ctx context.Context, c Caller, tag Tag, l TokenLifetimes) (*IssuedTokens, error) {
	return call(ctx, s, c, ActIssueKeyTokens, tag, func() (*IssuedTokens, error) { return s.issuePair(ctx, c, tag, l) })
}

// ReissueKeyTokens issues a new access token and refresh token for a
// refresh-token caller (reissueKeyTokens); the refresh token used stays
// valid.
func (s *Service) ReissueKeyTokens(ctx context.Context, c Caller, tag Tag, l TokenLifetimes) (*IssuedTokens, error) {
	return call(ctx, s, c, ActReissueKeyTokens, tag, func() (*IssuedTokens, error) { return s.issuePair(ctx, c, tag, l) })
}

// IssueKeyAccessToken issues an access token for a refresh-token caller
// (issueKeyAccessToken); only the access lifetime of l counts.
func (s *Service) IssueKeyAccessToken(ctx context.Context, c Caller, tag Tag, l TokenLifetimes) (*IssuedTokens, error) {
	return call(ctx, s, c, ActIssueKeyAccessToken, tag, func() (*IssuedTokens, error) {
		toks, exp, err := s.issueTokens(ctx, c, tag, []string{token.Access}, func(now time.Time) ([]time.Time, error) {
			a, err := l.access(now)
			return []time.Time{a}, err
		}, requireEnabled)
		if err != nil {
			return nil, err
		}
		return &IssuedTokens{Access: toks[0], AccessExpires: exp[0]}, nil
	})
}

func (s *Service) issuePair(ctx context.Context, c Caller, tag Tag, l TokenLifetimes) (*IssuedTokens, error) {
	toks, exp, err := s.issueTokens(ctx, c, tag, []string{token.Access, token.Refresh}, func(now time.Time) ([]time.Time, error) {
		a, err := l.access(now)
		if err != nil {
			return nil, err
		}
		r, err := l.refresh(now)
		return []time.Time{a, r}, err
	}, requireEnabled)
	if err != nil {
		return nil, err
	}
	return &IssuedTokens{Access: toks[0], Refresh: toks[1], AccessExpires: exp[0], RefreshExpires: exp[1]}, nil
}
