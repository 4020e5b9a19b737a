package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// This file holds the per-key IP ACL, token generator and token routes
// (ncp-kms-api.md §5 rows 25-36, §6.4-§6.6). Every route but RenewTokenSet
// and CreateAccessToken takes account authentication (a client made by New).

// ACLState is the data of Enable and Disable IP ACL.
type ACLState struct {
	KeyTag       string `json:"keyTag"`
	IsACLEnabled bool   `json:"isAclEnabled"`
}

// ACL is the data of Get ACL Rule List: whether the key's IP ACL is enabled
// and the IPv4 addresses it lets token requests come from.
type ACL struct {
	KeyTag        string   `json:"keyTag"`
	IsACLEnabled  bool     `json:"isAclEnabled"`
	AllowedIPList []string `json:"allowedIpList"`
}

// ACLChange is the data of Add and Delete ACL Rule: the whole list after
// the change.
type ACLChange struct {
	KeyTag        string   `json:"keyTag"`
	AllowedIPList []string `json:"allowedIpList"`
}

// TokenGenerator is the data of Get Token Generator. TokenGeneratorID and
// EnabledDate are null until a generator is created; DisabledDate is set
// once one was deleted.
type TokenGenerator struct {
	TokenGeneratorID *string `json:"tokenGeneratorId"`
	Status           string  `json:"status"` // ACTIVE or INACTIVE
	EnabledDate      *int64  `json:"enabledDate"`
	DisabledDate     *int64  `json:"disabledDate"`
	IssuedTokenCount int     `json:"issuedTokenCount"`
}

// TokenHours is the lifetime of a token in hours, as sent in
// accessTokenHours and refreshTokenHours. 0 leaves the field out, so the
// server's default applies (72 hours for an access token, 2160 for a
// refresh token); a positive value is a number of hours (the server takes
// 1-17520); Unlimited is sent as the string "UL". Other negative values are
// refused before anything is sent.
type TokenHours int

// Unlimited is the lifetime of a token that never expires, sent as "UL".
const Unlimited TokenHours = -1

// MarshalJSON encodes h as a JSON number of hours, or as "UL" for Unlimited.
func (h TokenHours) MarshalJSON() ([]byte, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if h == Unlimited {
		return []byte(`"UL"`), nil
	}
	return strconv.AppendInt(nil, int64(h), 10), nil
}

func (h TokenHours) check() error {
	if h < 0 && h != Unlimited {
		return fmt.Errorf("client: invalid token lifetime %d hours (use a positive number, 0 or Unlimited)", int(h))
	}
	return nil
}

// TokenSet is the data of Create and Renew Token Set: a refresh token and
// an access token of one key. String and GoString hide both tokens, so that
// printing the value does not leak them.
type TokenSet struct {
	RefreshToken string `json:"refreshToken"`
	AccessToken  string `json:"accessToken"`
}

// String describes s without its tokens.
func (s TokenSet) String() string { return "token set (refresh and access tokens redacted)" }

// GoString describes s without its tokens.
func (s TokenSet) GoString() string {
	return "client.TokenSet{RefreshToken:<redacted>, AccessToken:<redacted>}"
}

// ipListBody is the body of Add and Delete ACL Rule.
type ipListBody struct {
	IPList []string `json:"ipList"`
}

// tokenHoursBody is the body of the token routes; a zero lifetime is left out.
type tokenHoursBody struct {
	AccessTokenHours  TokenHours `json:"accessTokenHours,omitempty"`
	RefreshTokenHours TokenHours `json:"refreshTokenHours,omitempty"`
}

func (b tokenHoursBody) check() error {
	if err := b.AccessTokenHours.check(); err != nil {
		return err
	}
	return b.RefreshTokenHours.check()
}

// EnableACL turns the key's IP ACL on (POST .../acl/enable): token requests
// are then accepted only from the listed addresses, none while the list is
// empty. Account requests are not affected.
func (c *Client) EnableACL(ctx context.Context, tag string) (*ACLState, error) {
	return callKey[ACLState](ctx, c, http.MethodPost, tag, "/acl/enable", nil)
}

// DisableACL turns the key's IP ACL off (POST .../acl/disable); the list is kept.
func (c *Client) DisableACL(ctx context.Context, tag string) (*ACLState, error) {
	return callKey[ACLState](ctx, c, http.MethodPost, tag, "/acl/disable", nil)
}

// GetACL returns the key's IP ACL (GET .../acl).
func (c *Client) GetACL(ctx context.Context, tag string) (*ACL, error) {
	return callKey[ACL](ctx, c, http.MethodGet, tag, "/acl", nil)
}

// AddACL adds IPv4 addresses to the key's IP ACL (POST .../acl with
// {"ipList": [...]}) and returns the whole list.
func (c *Client) AddACL(ctx context.Context, tag string, ips []string) (*ACLChange, error) {
	return callKey[ACLChange](ctx, c, http.MethodPost, tag, "/acl", ipListBody{IPList: nonNil(ips)})
}

// DeleteACL removes IPv4 addresses from the key's IP ACL (DELETE .../acl
// with the JSON body {"ipList": [...]}) and returns the remaining list.
func (c *Client) DeleteACL(ctx context.Context, tag string, ips []string) (*ACLChange, error) {
	return callKey[ACLChange](ctx, c, http.MethodDelete, tag, "/acl", ipListBody{IPList: nonNil(ips)})
}

// CreateTokenGenerator activates the key's token generator, after which
// tokens can be issued (POST .../token-generator).
func (c *Client) CreateTokenGenerator(ctx context.Context, tag string) error {
	return c.call(ctx, http.MethodPost, tag, "/token-generator", nil, nil)
}

// ReplaceTokenGenerator replaces the key's token generator with a new one;
// every token issued by the old one stops working at once
// (PUT .../token-generator).
func (c *Client) ReplaceTokenGenerator(ctx context.Context, tag string) error {
	return c.call(ctx, http.MethodPut, tag, "/token-generator", nil, nil)
}

// DeleteTokenGenerator disables the key's token generator; token
// authentication stops and every issued token stops working
// (DELETE .../token-generator).
func (c *Client) DeleteTokenGenerator(ctx context.Context, tag string) error {
	return c.call(ctx, http.MethodDelete, tag, "/token-generator", nil, nil)
}

// GetTokenGenerator returns the state of the key's token generator
// (GET .../token-generator).
func (c *Client) GetTokenGenerator(ctx context.Context, tag string) (*TokenGenerator, error) {
	return callKey[TokenGenerator](ctx, c, http.MethodGet, tag, "/token-generator", nil)
}

// CreateTokenSet issues a refresh token and an access token of the key
// with the given lifetimes (POST .../token-set, account authentication).
// The key needs an active token generator.
func (c *Client) CreateTokenSet(ctx context.Context, tag string, access, refresh TokenHours) (*TokenSet, error) {
	return c.tokenSet(ctx, http.MethodPost, tag, access, refresh)
}

// RenewTokenSet issues a new refresh token and access token of the key
// (PUT .../token-set). It is meant for a client made by NewWithToken with a
// refresh token of the key; earlier tokens stay valid.
func (c *Client) RenewTokenSet(ctx context.Context, tag string, access, refresh TokenHours) (*TokenSet, error) {
	return c.tokenSet(ctx, http.MethodPut, tag, access, refresh)
}

func (c *Client) tokenSet(ctx context.Context, method, tag string, access, refresh TokenHours) (*TokenSet, error) {
	body := tokenHoursBody{AccessTokenHours: access, RefreshTokenHours: refresh}
	if err := body.check(); err != nil {
		return nil, err
	}
	return callKey[TokenSet](ctx, c, method, tag, "/token-set", body)
}

// CreateAccessToken issues an access token of the key with the given
// lifetime (POST .../access-token). It is meant for a client made by
// NewWithToken with a refresh token of the key.
func (c *Client) CreateAccessToken(ctx context.Context, tag string, access TokenHours) (string, error) {
	body := tokenHoursBody{AccessTokenHours: access}
	if err := body.check(); err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/access-token", body, &out); err != nil {
		return "", err
	}
	return out.AccessToken, nil
}
