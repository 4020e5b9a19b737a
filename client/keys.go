package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// keysPath is the prefix of every API 2.0 route.
const keysPath = "/kms/v1/keys"

// keyPath returns the path of a route of one key; tag is path-escaped so
// that it can never name another route.
func keyPath(tag, suffix string) (string, error) {
	if tag == "" {
		return "", errors.New("client: empty key tag")
	}
	return keysPath + "/" + url.PathEscape(tag) + suffix, nil
}

// call is Do for a route of one key.
func (c *Client) call(ctx context.Context, method, tag, suffix string, body, out any) error {
	p, err := keyPath(tag, suffix)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, p, body, out)
}

// callKey is call for routes that answer one value of type T.
func callKey[T any](ctx context.Context, c *Client, method, tag, suffix string, body any) (*T, error) {
	var out T
	if err := c.call(ctx, method, tag, suffix, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates a key (POST /kms/v1/keys).
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*Key, error) {
	var k Key
	if err := c.Do(ctx, http.MethodPost, keysPath, req, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys returns one page of the keystore's keys, newest first
// (GET /kms/v1/keys). pageNo starts at 1; pageSize is 1-200. A zero
// argument is left out, so the server's default applies.
func (c *Client) ListKeys(ctx context.Context, pageNo, pageSize int) (*KeyList, error) {
	q := url.Values{}
	if pageNo != 0 {
		q.Set("pageNo", strconv.Itoa(pageNo))
	}
	if pageSize != 0 {
		q.Set("pageSize", strconv.Itoa(pageSize))
	}
	p := keysPath
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var l KeyList
	if err := c.Do(ctx, http.MethodGet, p, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// GetKey returns the information of one key (GET /kms/v1/keys/{keyTag}).
func (c *Client) GetKey(ctx context.Context, tag string) (*Key, error) {
	return callKey[Key](ctx, c, http.MethodGet, tag, "", nil)
}

// EnableKey enables a disabled key (POST .../enable).
func (c *Client) EnableKey(ctx context.Context, tag string) (*StatusChange, error) {
	return callKey[StatusChange](ctx, c, http.MethodPost, tag, "/enable", nil)
}

// DisableKey disables a key (POST .../disable).
func (c *Client) DisableKey(ctx context.Context, tag string) (*StatusChange, error) {
	return callKey[StatusChange](ctx, c, http.MethodPost, tag, "/disable", nil)
}

// RequestDeletion puts a key in REVOKE, pending deletion
// (POST .../request-deletion).
func (c *Client) RequestDeletion(ctx context.Context, tag string) (*StatusChange, error) {
	return callKey[StatusChange](ctx, c, http.MethodPost, tag, "/request-deletion", nil)
}

// CancelDeletion takes a REVOKE key back to DISABLE (POST .../cancel-deletion).
func (c *Client) CancelDeletion(ctx context.Context, tag string) (*StatusChange, error) {
	return callKey[StatusChange](ctx, c, http.MethodPost, tag, "/cancel-deletion", nil)
}

// DeleteKey deletes a REVOKE key at once and for good
// (DELETE /kms/v1/keys/{keyTag}).
func (c *Client) DeleteKey(ctx context.Context, tag string) error {
	return c.call(ctx, http.MethodDelete, tag, "", nil, nil)
}

// UpdateName renames a key (PUT .../name).
func (c *Client) UpdateName(ctx context.Context, tag, name string) (*NameChange, error) {
	return callKey[NameChange](ctx, c, http.MethodPut, tag, "/name", map[string]string{"keyName": name})
}

// UpdateMemo replaces a key's memo (PUT .../memo).
func (c *Client) UpdateMemo(ctx context.Context, tag, memo string) (*MemoChange, error) {
	return callKey[MemoChange](ctx, c, http.MethodPut, tag, "/memo", map[string]string{"memo": memo})
}

// Rotate adds a new current version to a key (POST .../rotate).
func (c *Client) Rotate(ctx context.Context, tag string) (*Rotation, error) {
	return callKey[Rotation](ctx, c, http.MethodPost, tag, "/rotate", nil)
}

// EnableAutoRotation turns automatic rotation on (POST .../enable-auto-rotation).
func (c *Client) EnableAutoRotation(ctx context.Context, tag string) (*AutoRotation, error) {
	return callKey[AutoRotation](ctx, c, http.MethodPost, tag, "/enable-auto-rotation", nil)
}

// DisableAutoRotation turns automatic rotation off (POST .../disable-auto-rotation).
func (c *Client) DisableAutoRotation(ctx context.Context, tag string) (*AutoRotation, error) {
	return callKey[AutoRotation](ctx, c, http.MethodPost, tag, "/disable-auto-rotation", nil)
}

// UpdateRotationPeriod sets the automatic rotation period in days, 1-730
// (PUT .../rotation-period).
func (c *Client) UpdateRotationPeriod(ctx context.Context, tag string, days int) (*RotationPeriodChange, error) {
	return callKey[RotationPeriodChange](ctx, c, http.MethodPut, tag, "/rotation-period", map[string]int{"rotationPeriod": days})
}

// ListVersions returns every version of a key (GET .../versions).
func (c *Client) ListVersions(ctx context.Context, tag string) (*VersionList, error) {
	return callKey[VersionList](ctx, c, http.MethodGet, tag, "/versions", nil)
}

// EnableVersion enables one version of a key (POST .../versions/{version}/enable).
func (c *Client) EnableVersion(ctx context.Context, tag string, version int) (*VersionStatus, error) {
	return callKey[VersionStatus](ctx, c, http.MethodPost, tag, "/versions/"+strconv.Itoa(version)+"/enable", nil)
}

// DisableVersion disables one version of a key; the current version cannot
// be disabled (POST .../versions/{version}/disable).
func (c *Client) DisableVersion(ctx context.Context, tag string, version int) (*VersionStatus, error) {
	return callKey[VersionStatus](ctx, c, http.MethodPost, tag, "/versions/"+strconv.Itoa(version)+"/disable", nil)
}

// CreateAccessKey creates an access key of the given keystore with a role
// (admin, manager, crypto or viewer; "" is admin) — POST /nkms/v1/access-keys.
// This is an nkms admin route; NAVER Cloud KMS does not have it. The answer
// holds the only copy of the secret key.
func (c *Client) CreateAccessKey(ctx context.Context, keystoreID int64, role string) (*AccessKeyCredentials, error) {
	var a AccessKeyCredentials
	body := struct {
		KeystoreID int64  `json:"keystoreId"`
		Role       string `json:"role,omitempty"`
	}{keystoreID, role}
	if err := c.Do(ctx, http.MethodPost, "/nkms/v1/access-keys", body, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// ListAccessKeys lists the access keys the caller manages (GET /nkms/v1/access-keys), never their secrets.
func (c *Client) ListAccessKeys(ctx context.Context) ([]AccessKey, error) {
	var l struct {
		AccessKeyList []AccessKey `json:"accessKeyList"`
	}
	if err := c.Do(ctx, http.MethodGet, "/nkms/v1/access-keys", nil, &l); err != nil {
		return nil, err
	}
	return l.AccessKeyList, nil
}

// RevokeAccessKey deletes an access key (DELETE /nkms/v1/access-keys/{id}); it stops working at once.
func (c *Client) RevokeAccessKey(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("nkms client: empty access key id")
	}
	return c.Do(ctx, http.MethodDelete, "/nkms/v1/access-keys/"+url.PathEscape(id), nil, nil)
}
