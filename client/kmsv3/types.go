package kmsv3

import (
	"encoding/json"
	"errors"
	"time"
)

// Key types, protection type and states of API 3.0.
const (
	AES256  = "AES256"
	RSA2048 = "RSA2048"
	ECDSA   = "ECDSA"

	Basic = "BASIC"

	Enabled  = "ENABLED"  // key, version or token generator
	Disabled = "DISABLED" // key, version or token generator
	Revoked  = "REVOKED"  // key scheduled for deletion
)

// Key is a key (getKey, createKey, updateKey, the deletion requests, list items).
type Key struct {
	KeyTag                string    `json:"keyTag"`
	KeyName               string    `json:"keyName"`
	NRN                   string    `json:"nrn"`
	KeyType               string    `json:"keyType"`
	ProtectionType        string    `json:"protectionType"`
	Status                string    `json:"status"`
	Memo                  *string   `json:"memo"` // nil when the key has none
	Convergent            bool      `json:"convergent"`
	CurrentVersion        int       `json:"currentVersion"`
	CreatedDateTime       time.Time `json:"createdDateTime"`
	StatusChangedDateTime time.Time `json:"statusChangedDateTime"`
	// ScheduledDestroyDateTime is set only while the key is REVOKED.
	ScheduledDestroyDateTime *time.Time `json:"scheduledDestroyDateTime"`
}

// Page selects one page of a list: PageNo counts from 0 (the default);
// PageSize is 1–200, 0 for the server's default (20). Zero values are not
// sent.
type Page struct {
	PageNo   int
	PageSize int
}

// KeyList is one page of listKeys.
type KeyList struct {
	Keys       []Key `json:"keys"`
	PageNo     int   `json:"pageNo"`
	PageSize   int   `json:"pageSize"`
	TotalCount int   `json:"totalCount"`
}

// RotationSettings is the rotation of CreateKey: Enabled false to not
// rotate; PeriodDays 1–730, or 0 to leave it out (90 days when enabled).
type RotationSettings struct {
	Enabled    bool `json:"enabled"`
	PeriodDays int  `json:"periodDays,omitempty"`
}

// CreateKeyRequest is the body of createKey. Rotation is required by the API
// and always sent; Memo and Convergent are sent when set.
type CreateKeyRequest struct {
	KeyName        string           `json:"keyName"`
	KeyType        string           `json:"keyType"`
	ProtectionType string           `json:"protectionType"`
	Memo           string           `json:"memo,omitempty"`
	Convergent     bool             `json:"convergent,omitempty"`
	Rotation       RotationSettings `json:"rotation"`
}

// UpdateKeyRequest is the merge patch of updateKey: only what is set is
// sent. KeyName and Status ("ENABLED" or "DISABLED") are sent when not
// empty; Memo when not nil; ClearMemo sends "memo": null, which removes the
// memo (it cannot be combined with Memo). The zero request sends {} and
// returns the key unchanged.
type UpdateKeyRequest struct {
	KeyName   string
	Memo      *string
	ClearMemo bool
	Status    string
}

// MarshalJSON writes the merge patch.
func (r UpdateKeyRequest) MarshalJSON() ([]byte, error) {
	if r.ClearMemo && r.Memo != nil {
		return nil, errors.New("kmsv3: UpdateKeyRequest sets both Memo and ClearMemo")
	}
	m := map[string]any{}
	if r.KeyName != "" {
		m["keyName"] = r.KeyName
	}
	if r.Memo != nil {
		m["memo"] = *r.Memo
	}
	if r.ClearMemo {
		m["memo"] = nil
	}
	if r.Status != "" {
		m["status"] = r.Status
	}
	return json.Marshal(m)
}

// Rotation is the automatic rotation setting of a key. PeriodDays is 0 and
// NextRotationDateTime nil when rotation was never enabled with a period.
type Rotation struct {
	Enabled              bool       `json:"enabled"`
	PeriodDays           int        `json:"periodDays"`
	NextRotationDateTime *time.Time `json:"nextRotationDateTime"`
}

// UpdateKeyRotationRequest is the merge patch of updateKeyRotation: nil
// fields are not sent ({} returns the settings unchanged).
type UpdateKeyRotationRequest struct {
	Enabled    *bool `json:"enabled,omitempty"`
	PeriodDays *int  `json:"periodDays,omitempty"`
}

// Version is a key version.
type Version struct {
	Version               int       `json:"version"`
	Status                string    `json:"status"`
	Current               bool      `json:"current"`
	CreatedDateTime       time.Time `json:"createdDateTime"`
	StatusChangedDateTime time.Time `json:"statusChangedDateTime"`
}

// VersionList is one page of listKeyVersions, in increasing version order.
type VersionList struct {
	Versions   []Version `json:"versions"`
	PageNo     int       `json:"pageNo"`
	PageSize   int       `json:"pageSize"`
	TotalCount int       `json:"totalCount"`
}

// UpdateKeyVersionRequest is the merge patch of updateKeyVersion: Status
// ("ENABLED" or "DISABLED") is sent when not empty.
type UpdateKeyVersionRequest struct {
	Status string `json:"status,omitempty"`
}

// ACL is the IP access control of a key's token routes: entries are IPv4
// addresses, CIDR prefixes or addresses with "*" octets, as sent.
type ACL struct {
	Enabled    bool     `json:"enabled"`
	AllowedIps []string `json:"allowedIps"`
}

// UpdateKeyAclRequest is the merge patch of updateKeyAcl: Enabled is sent
// when not nil.
type UpdateKeyAclRequest struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// TokenGenerator is a key's token generator; TokenGeneratorID is set only
// while it is ENABLED.
type TokenGenerator struct {
	Status           string `json:"status"`
	TokenGeneratorID string `json:"tokenGeneratorId,omitempty"`
}

// IssueTokensRequest sets the lifetimes of issueKeyTokens and
// reissueKeyTokens; zero fields are not sent (server defaults: 4320
// minutes, 2160 hours). AccessTokenMinutes is 1–1,051,200 and may not be
// combined with AccessTokenUnlimited; RefreshTokenHours 1–17,520, likewise
// with RefreshTokenUnlimited.
type IssueTokensRequest struct {
	AccessTokenMinutes    int  `json:"accessTokenMinutes,omitempty"`
	AccessTokenUnlimited  bool `json:"accessTokenUnlimited,omitempty"`
	RefreshTokenHours     int  `json:"refreshTokenHours,omitempty"`
	RefreshTokenUnlimited bool `json:"refreshTokenUnlimited,omitempty"`
}

// IssueAccessTokenRequest sets the lifetime of issueKeyAccessToken, as in
// IssueTokensRequest.
type IssueAccessTokenRequest struct {
	AccessTokenMinutes   int  `json:"accessTokenMinutes,omitempty"`
	AccessTokenUnlimited bool `json:"accessTokenUnlimited,omitempty"`
}

// Tokens is a refresh token and an access token; an expiry is nil when the
// token does not expire. The tokens are secrets: do not log them.
type Tokens struct {
	AccessToken                string     `json:"accessToken"`
	RefreshToken               string     `json:"refreshToken"`
	AccessTokenExpireDateTime  *time.Time `json:"accessTokenExpireDateTime"`
	RefreshTokenExpireDateTime *time.Time `json:"refreshTokenExpireDateTime"`
}

// AccessToken is an access token alone (issueKeyAccessToken).
type AccessToken struct {
	AccessToken               string     `json:"accessToken"`
	AccessTokenExpireDateTime *time.Time `json:"accessTokenExpireDateTime"`
}

// ActivitiesRequest selects usage logs of a key. Each filter is a list of
// exact, case-sensitive values (OR within one filter, AND across filters);
// From and To bound the period (zero: not sent; the server's default period
// is the last 24 hours). Page as for the other lists.
type ActivitiesRequest struct {
	Page
	ActionCode  []string
	ResultCode  []string
	RequestType []string
	RequestorID []string
	RequestorIP []string
	From, To    time.Time
}

// Activity is one usage log entry.
type Activity struct {
	ActivityDateTime time.Time `json:"activityDateTime"`
	ActionCode       string    `json:"actionCode"`
	ResultCode       string    `json:"resultCode"`
	RequestType      string    `json:"requestType"`
	RequestorID      string    `json:"requestorId"`
	RequestorIP      string    `json:"requestorIp"`
	KeyVersion       *int      `json:"keyVersion"`
	Message          string    `json:"message"`
}

// ActivityList is one page of listKeyActivities, newest first.
type ActivityList struct {
	Activities []Activity `json:"activities"`
	PageNo     int        `json:"pageNo"`
	PageSize   int        `json:"pageSize"`
	TotalCount int        `json:"totalCount"`
}

// EncryptRequest is one item of BatchEncrypt. Context is required for a
// convergent key and ignored by others; nil is not sent.
type EncryptRequest struct {
	Plaintext []byte
	Context   []byte
}

// DecryptRequest is one item of BatchDecrypt and BatchReEncrypt.
type DecryptRequest struct {
	Ciphertext string
	Context    []byte
}

// CustomKeyRequest is the body of issueCustomKey: Bits 128, 256 or 512 (0:
// not sent, the server's 256); RequestPlainKey asks for the plaintext data
// key too; Context for a convergent key (nil: not sent).
type CustomKeyRequest struct {
	RequestPlainKey bool
	Bits            int
	Context         []byte
}

// CustomKey is a data key: Ciphertext (decrypt it later with Decrypt),
// Plaintext when asked for, and the key version that encrypted it.
type CustomKey struct {
	Ciphertext string
	Plaintext  []byte
	Version    int
}

// PublicKey is the public key of one version of an asymmetric key, in PEM.
type PublicKey struct {
	Version   int    `json:"version"`
	PublicKey string `json:"publicKey"`
}
