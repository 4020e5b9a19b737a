package kmsv3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// errTokenClient and errAccountClient refuse a call on the wrong kind of
// client before anything is sent.
var (
	errTokenClient   = errors.New("kmsv3: this operation needs an account client (New), not a token client")
	errAccountClient = errors.New("kmsv3: this operation needs a token client with a refresh token (NewWithToken)")
)

// keyPath is the path of a key's account route: /kms/v3/keys/{keyTag}{suffix}.
func keyPath(tag, suffix string) (string, error) {
	if tag == "" {
		return "", errors.New("kmsv3: empty key tag")
	}
	return "/kms/v3/keys/" + url.PathEscape(tag) + suffix, nil
}

// tokenPath is the path of a key's token route: /kms/v3/token/keys/{keyTag}{suffix}.
func tokenPath(tag, suffix string) (string, error) {
	if tag == "" {
		return "", errors.New("kmsv3: empty key tag")
	}
	return "/kms/v3/token/keys/" + url.PathEscape(tag) + suffix, nil
}

// account sends an account-route call of key tag (tag "" with suffix "" is
// /kms/v3/keys itself) and decodes its answer into out.
func (c *Client) account(ctx context.Context, tag, suffix string, cl call, out any) error {
	if c.token != "" {
		return errTokenClient
	}
	if tag == "" && suffix == "" {
		cl.path = "/kms/v3/keys"
	} else {
		p, err := keyPath(tag, suffix)
		if err != nil {
			return err
		}
		cl.path = p
	}
	return c.do(ctx, cl, out)
}

// versionSuffix is "/versions/{version}" after checking version ≥ 1.
func versionSuffix(version int) (string, error) {
	if version < 1 || version > 1<<31-1 {
		return "", fmt.Errorf("kmsv3: version %d is not in 1–2147483647", version)
	}
	return "/versions/" + strconv.Itoa(version), nil
}

// pageQuery is the query of a Page; zero values are left out.
func pageQuery(p Page) url.Values {
	q := url.Values{}
	if p.PageNo != 0 {
		q.Set("pageNo", strconv.Itoa(p.PageNo))
	}
	if p.PageSize != 0 {
		q.Set("pageSize", strconv.Itoa(p.PageSize))
	}
	return q
}

// CreateKey creates a key (createKey, POST /kms/v3/keys; 201).
func (c *Client) CreateKey(ctx context.Context, r CreateKeyRequest) (*Key, error) {
	var k Key
	return ret(&k, c.account(ctx, "", "", call{method: http.MethodPost, body: r}, &k))
}

// ListKeys returns one page of keys, newest first (listKeys, GET /kms/v3/keys).
func (c *Client) ListKeys(ctx context.Context, p Page) (*KeyList, error) {
	var l KeyList
	return ret(&l, c.account(ctx, "", "", call{method: http.MethodGet, query: pageQuery(p), idem: true}, &l))
}

// GetKey returns a key (getKey, GET /kms/v3/keys/{keyTag}).
func (c *Client) GetKey(ctx context.Context, tag string) (*Key, error) {
	var k Key
	return ret(&k, c.account(ctx, tag, "", call{method: http.MethodGet, idem: true}, &k))
}

// UpdateKey changes a key's name, memo or status by merge patch and returns
// the key (updateKey, PATCH /kms/v3/keys/{keyTag}).
func (c *Client) UpdateKey(ctx context.Context, tag string, r UpdateKeyRequest) (*Key, error) {
	var k Key
	return ret(&k, c.account(ctx, tag, "", call{method: http.MethodPatch, body: r, patch: true}, &k))
}

// DeleteKey destroys a REVOKED key at once (deleteKey, DELETE /kms/v3/keys/{keyTag}; 204).
func (c *Client) DeleteKey(ctx context.Context, tag string) error {
	return c.account(ctx, tag, "", call{method: http.MethodDelete}, nil)
}

// RequestKeyDeletion schedules a key's destruction and returns the REVOKED
// key (requestKeyDeletion, POST …/request-deletion).
func (c *Client) RequestKeyDeletion(ctx context.Context, tag string) (*Key, error) {
	var k Key
	return ret(&k, c.account(ctx, tag, "/request-deletion", call{method: http.MethodPost}, &k))
}

// CancelKeyDeletion cancels a scheduled destruction and returns the key
// (cancelKeyDeletion, POST …/cancel-deletion).
func (c *Client) CancelKeyDeletion(ctx context.Context, tag string) (*Key, error) {
	var k Key
	return ret(&k, c.account(ctx, tag, "/cancel-deletion", call{method: http.MethodPost}, &k))
}

// GetKeyRotation returns a key's rotation settings (getKeyRotation, GET …/rotation).
func (c *Client) GetKeyRotation(ctx context.Context, tag string) (*Rotation, error) {
	var r Rotation
	return ret(&r, c.account(ctx, tag, "/rotation", call{method: http.MethodGet, idem: true}, &r))
}

// UpdateKeyRotation changes a key's rotation settings by merge patch
// (updateKeyRotation, PATCH …/rotation).
func (c *Client) UpdateKeyRotation(ctx context.Context, tag string, r UpdateKeyRotationRequest) (*Rotation, error) {
	var out Rotation
	return ret(&out, c.account(ctx, tag, "/rotation", call{method: http.MethodPatch, body: r, patch: true}, &out))
}

// CreateKeyVersion rotates a key: it makes a new current version
// (createKeyVersion, POST …/versions; 201).
func (c *Client) CreateKeyVersion(ctx context.Context, tag string) (*Version, error) {
	var v Version
	return ret(&v, c.account(ctx, tag, "/versions", call{method: http.MethodPost}, &v))
}

// ListKeyVersions returns one page of a key's versions (listKeyVersions, GET …/versions).
func (c *Client) ListKeyVersions(ctx context.Context, tag string, p Page) (*VersionList, error) {
	var l VersionList
	return ret(&l, c.account(ctx, tag, "/versions", call{method: http.MethodGet, query: pageQuery(p), idem: true}, &l))
}

// GetKeyVersion returns one version (getKeyVersion, GET …/versions/{version}).
func (c *Client) GetKeyVersion(ctx context.Context, tag string, version int) (*Version, error) {
	s, err := versionSuffix(version)
	if err != nil {
		return nil, err
	}
	var v Version
	return ret(&v, c.account(ctx, tag, s, call{method: http.MethodGet, idem: true}, &v))
}

// UpdateKeyVersion enables or disables a version that is not the current
// one, by merge patch (updateKeyVersion, PATCH …/versions/{version}).
func (c *Client) UpdateKeyVersion(ctx context.Context, tag string, version int, r UpdateKeyVersionRequest) (*Version, error) {
	s, err := versionSuffix(version)
	if err != nil {
		return nil, err
	}
	var v Version
	return ret(&v, c.account(ctx, tag, s, call{method: http.MethodPatch, body: r, patch: true}, &v))
}

// GetKeyAcl returns a key's IP access control (getKeyAcl, GET …/acl).
func (c *Client) GetKeyAcl(ctx context.Context, tag string) (*ACL, error) {
	var a ACL
	return ret(&a, c.account(ctx, tag, "/acl", call{method: http.MethodGet, idem: true}, &a))
}

// UpdateKeyAcl turns a key's IP access control on or off by merge patch
// (updateKeyAcl, PATCH …/acl).
func (c *Client) UpdateKeyAcl(ctx context.Context, tag string, r UpdateKeyAclRequest) (*ACL, error) {
	var a ACL
	return ret(&a, c.account(ctx, tag, "/acl", call{method: http.MethodPatch, body: r, patch: true}, &a))
}

type allowedIps struct {
	AllowedIps []string `json:"allowedIps"`
}

// AddKeyAclAllowedIps adds 1–100 entries to a key's allowed list and
// returns the ACL (addKeyAclAllowedIps, POST …/acl/add-allowed-ips).
func (c *Client) AddKeyAclAllowedIps(ctx context.Context, tag string, ips []string) (*ACL, error) {
	var a ACL
	return ret(&a, c.account(ctx, tag, "/acl/add-allowed-ips", call{method: http.MethodPost, body: allowedIps{nonNil(ips)}}, &a))
}

// RemoveKeyAclAllowedIps removes entries (exact strings) from a key's
// allowed list and returns the ACL (removeKeyAclAllowedIps, POST …/acl/remove-allowed-ips).
func (c *Client) RemoveKeyAclAllowedIps(ctx context.Context, tag string, ips []string) (*ACL, error) {
	var a ACL
	return ret(&a, c.account(ctx, tag, "/acl/remove-allowed-ips", call{method: http.MethodPost, body: allowedIps{nonNil(ips)}}, &a))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetKeyTokenGenerator returns a key's token generator (getKeyTokenGenerator, GET …/token-generator).
func (c *Client) GetKeyTokenGenerator(ctx context.Context, tag string) (*TokenGenerator, error) {
	var g TokenGenerator
	return ret(&g, c.account(ctx, tag, "/token-generator", call{method: http.MethodGet, idem: true}, &g))
}

// ActivateKeyTokenGenerator activates a key's token generator (no change
// when it is active) (activateKeyTokenGenerator, POST …/activate-token-generator).
func (c *Client) ActivateKeyTokenGenerator(ctx context.Context, tag string) (*TokenGenerator, error) {
	var g TokenGenerator
	return ret(&g, c.account(ctx, tag, "/activate-token-generator", call{method: http.MethodPost}, &g))
}

// RotateKeyTokenGenerator replaces the generator's signing key pair: every
// token issued before stops working (rotateKeyTokenGenerator, POST …/rotate-token-generator).
func (c *Client) RotateKeyTokenGenerator(ctx context.Context, tag string) (*TokenGenerator, error) {
	var g TokenGenerator
	return ret(&g, c.account(ctx, tag, "/rotate-token-generator", call{method: http.MethodPost}, &g))
}

// DeactivateKeyTokenGenerator deactivates the generator: every token issued
// stops working (deactivateKeyTokenGenerator, POST …/deactivate-token-generator).
func (c *Client) DeactivateKeyTokenGenerator(ctx context.Context, tag string) (*TokenGenerator, error) {
	var g TokenGenerator
	return ret(&g, c.account(ctx, tag, "/deactivate-token-generator", call{method: http.MethodPost}, &g))
}

// IssueKeyTokens issues a refresh token and an access token from the key's
// token generator (issueKeyTokens, POST …/issue-tokens). The zero request
// sends {} (the server's default lifetimes).
func (c *Client) IssueKeyTokens(ctx context.Context, tag string, r IssueTokensRequest) (*Tokens, error) {
	var t Tokens
	return ret(&t, c.account(ctx, tag, "/issue-tokens", call{method: http.MethodPost, body: r}, &t))
}

// ReissueKeyTokens issues a new refresh and access token with the refresh
// token of a token client (reissueKeyTokens, POST
// /kms/v3/token/keys/{keyTag}/reissue-tokens). tag must be as issued.
func (c *Client) ReissueKeyTokens(ctx context.Context, tag string, r IssueTokensRequest) (*Tokens, error) {
	var t Tokens
	return ret(&t, c.tokenCall(ctx, tag, "/reissue-tokens", call{method: http.MethodPost, body: r}, &t))
}

// IssueKeyAccessToken issues a new access token with the refresh token of a
// token client (issueKeyAccessToken, POST
// /kms/v3/token/keys/{keyTag}/issue-access-token). tag must be as issued.
func (c *Client) IssueKeyAccessToken(ctx context.Context, tag string, r IssueAccessTokenRequest) (*AccessToken, error) {
	var t AccessToken
	return ret(&t, c.tokenCall(ctx, tag, "/issue-access-token", call{method: http.MethodPost, body: r}, &t))
}

func (c *Client) tokenCall(ctx context.Context, tag, suffix string, cl call, out any) error {
	if c.token == "" {
		return errAccountClient
	}
	p, err := tokenPath(tag, suffix)
	if err != nil {
		return err
	}
	cl.path = p
	return c.do(ctx, cl, out)
}

// ListKeyActivities returns one page of a key's usage logs, newest first
// (listKeyActivities, GET …/activities).
func (c *Client) ListKeyActivities(ctx context.Context, tag string, r ActivitiesRequest) (*ActivityList, error) {
	q := pageQuery(r.Page)
	for name, vs := range map[string][]string{"actionCode": r.ActionCode, "resultCode": r.ResultCode,
		"requestType": r.RequestType, "requestorId": r.RequestorID, "requestorIp": r.RequestorIP} {
		for _, v := range vs {
			q.Add(name, v)
		}
	}
	if !r.From.IsZero() {
		q.Set("fromDateTime", dateTime(r.From))
	}
	if !r.To.IsZero() {
		q.Set("toDateTime", dateTime(r.To))
	}
	var l ActivityList
	return ret(&l, c.account(ctx, tag, "/activities", call{method: http.MethodGet, query: q, idem: true}, &l))
}

// dateTime is t as the wire writes times: RFC 3339 in UTC with milliseconds.
func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// ret is v, or nil with err when the call failed.
func ret[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}
