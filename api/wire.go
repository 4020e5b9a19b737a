package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/nkms/nkms"
)

// Wire types: the exact JSON names of ncp-kms-api.md §6.

type createKeyRequest struct {
	KeyName        string `json:"keyName"`
	KeyType        string `json:"keyType"`
	ProtectionType string `json:"protectionType"`
	IsAutoRotation bool   `json:"isAutoRotation"`
	RotationPeriod int    `json:"rotationPeriod"`
	Memo           string `json:"memo"`
	IsConvergent   bool   `json:"isConvergent"`
}

type createKeyResponse struct {
	KeyID            int64  `json:"keyId"`
	KeyTag           string `json:"keyTag"`
	KeyName          string `json:"keyName"`
	KeyType          string `json:"keyType"`
	Status           string `json:"status"`
	KeystoreID       int64  `json:"keystoreId"`
	ProtectionType   string `json:"protectionType"`
	Memo             string `json:"memo"`
	IsConvergent     bool   `json:"isConvergent"`
	IsAutoRotation   bool   `json:"isAutoRotation"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
	RegisterDate     int64  `json:"registerDate"`
}

type keyInfoResponse struct {
	KeyID            int64  `json:"keyId"`
	KeyTag           string `json:"keyTag"`
	KeyName          string `json:"keyName"`
	Nrn              string `json:"nrn"`
	BaseURL          string `json:"baseUrl"`
	KeyType          string `json:"keyType"`
	Status           string `json:"status"`
	KeystoreID       int64  `json:"keystoreId"`
	CurrentVersion   int    `json:"currentVersion"`
	ProtectionType   string `json:"protectionType"`
	Memo             string `json:"memo"`
	IsConvergent     bool   `json:"isConvergent"`
	IsAutoRotation   bool   `json:"isAutoRotation"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
	RegisterDate     int64  `json:"registerDate"`
	DestroyDate      *int64 `json:"destroyDate"`
}

type keyListItem struct {
	KeyID          int64  `json:"keyId"`
	KeyTag         string `json:"keyTag"`
	KeyName        string `json:"keyName"`
	KeyType        string `json:"keyType"`
	Status         string `json:"status"`
	ProtectionType string `json:"protectionType"`
	IsConvergent   bool   `json:"isConvergent"`
	RegisterDate   int64  `json:"registerDate"`
	DestroyDate    *int64 `json:"destroyDate"`
}

type keyListResponse struct {
	KeyList       []keyListItem `json:"keyList"`
	CurrentPageNo int           `json:"currentPageNo"`
	TotalPageNo   int           `json:"totalPageNo"`
	TotalCount    int           `json:"totalCount"`
}

type statusResponse struct {
	KeyTag     string `json:"keyTag"`
	Status     string `json:"status"`
	StatusDate int64  `json:"statusDate"`
}

type nameRequest struct {
	KeyName *string `json:"keyName"`
}

type nameResponse struct {
	KeyTag  string `json:"keyTag"`
	KeyName string `json:"keyName"`
}

type memoRequest struct {
	Memo *string `json:"memo"`
}

type memoResponse struct {
	KeyTag string `json:"keyTag"`
	Memo   string `json:"memo"`
}

type rotateResponse struct {
	KeyTag      string `json:"keyTag"`
	Version     int    `json:"version"`
	RotatedDate int64  `json:"rotatedDate"`
}

type autoRotationResponse struct {
	KeyTag           string `json:"keyTag"`
	IsAutoRotation   bool   `json:"isAutoRotation"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
}

type autoRotationOffResponse struct {
	KeyTag         string `json:"keyTag"`
	IsAutoRotation bool   `json:"isAutoRotation"`
}

type rotationPeriodRequest struct {
	RotationPeriod *int `json:"rotationPeriod"`
}

type rotationPeriodResponse struct {
	KeyTag           string `json:"keyTag"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
}

type versionItem struct {
	Version     int    `json:"version"`
	Status      string `json:"status"`
	StatusDate  int64  `json:"statusDate"`
	RotatedDate int64  `json:"rotatedDate"`
}

type versionListResponse struct {
	KeyTag         string        `json:"keyTag"`
	CurrentVersion int           `json:"currentVersion"`
	VersionList    []versionItem `json:"versionList"`
}

type versionStatusResponse struct {
	Version    int    `json:"version"`
	Status     string `json:"status"`
	StatusDate int64  `json:"statusDate"`
}

type publicKeyRequest struct {
	KeyVersion int `json:"keyVersion"`
}

type publicKeyResponse struct {
	PublicKey string `json:"publicKey"`
}

type encryptRequest struct {
	Plaintext stringOrList `json:"plaintext"`
	Context   string       `json:"context"`
}

type encryptResponse struct {
	Ciphertext any `json:"ciphertext"` // string or []string, as the request
}

type decryptRequest struct {
	Ciphertext stringOrList `json:"ciphertext"`
	Context    string       `json:"context"`
}

type decryptResponse struct {
	Plaintext any `json:"plaintext"` // string or []string, as the request
}

type reEncryptResponse struct {
	NewCiphertext any `json:"newCiphertext"` // string or []string, as the request
}

type customKeyRequest struct {
	RequestPlainKey bool   `json:"requestPlainKey"`
	Bits            int    `json:"bits"`
	Context         string `json:"context"`
}

type customKeyResponse struct {
	Ciphertext string `json:"ciphertext"`
	Plaintext  string `json:"plaintext,omitempty"`
	KeyVersion int    `json:"key_version"`
}

type signRequest struct {
	Data *string `json:"data"`
}

type signResponse struct {
	Signature string `json:"signature"`
}

type verifyRequest struct {
	Data      *string `json:"data"`
	Signature *string `json:"signature"`
}

type verifyResponse struct {
	Valid bool `json:"valid"`
}

type createAccessKeyRequest struct {
	KeystoreID int64  `json:"keystoreId"`
	Role       string `json:"role"`
}

type accessKeyItem struct {
	AccessKey   string `json:"accessKey"`
	KeystoreID  int64  `json:"keystoreId"`
	Role        string `json:"role"`
	CreatedDate int64  `json:"createdDate"`
}

type accessKeyListResponse struct {
	AccessKeyList []accessKeyItem `json:"accessKeyList"`
}

type accessKeyResponse struct {
	AccessKey  string `json:"accessKey"`
	SecretKey  string `json:"secretKey"`
	KeystoreID int64  `json:"keystoreId"`
	Role       string `json:"role"`
}

// errStringOrList is a type error, so that the decoder names the field.
var errStringOrList = &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[string]()}

// stringOrList is a JSON value that is either a string or an array of strings
// (plaintext and ciphertext fields, D4); the answer mirrors the shape.
type stringOrList struct {
	Items []string
	List  bool
	Set   bool
}

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = stringOrList{}
		return nil
	case len(b) > 0 && b[0] == '[':
		var items []string
		if err := json.Unmarshal(b, &items); err != nil {
			return errStringOrList
		}
		*s = stringOrList{Items: items, List: true, Set: true}
		return nil
	case len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0:
		// The decoder has validated b as one JSON value: a string without
		// escapes is its contents (Base64 and ncpkms values always are).
		*s = stringOrList{Items: []string{string(b[1 : len(b)-1])}, Set: true}
		return nil
	default:
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return errStringOrList
		}
		*s = stringOrList{Items: []string{one}, Set: true}
		return nil
	}
}

// mirror returns items in the shape of s: a string for a string, an array
// for an array. Plain values keep encoding/json on its fast paths.
func (s stringOrList) mirror(items []string) any {
	if s.List {
		return items
	}
	return items[0]
}

// ms is a time as Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// optMS is a time as Unix milliseconds, or null when unset.
func optMS(t time.Time, ok bool) *int64 {
	if !ok {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func destroyDate(k *nkms.Key) *int64 {
	return optMS(k.DestroyDate, k.State == nkms.StateRevoke)
}

// parseVersion parses the {version} path segment: a positive decimal integer.
func parseVersion(s string) (int, error) {
	if s == "" || s[0] == '0' || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, nkms.Errorf(nkms.Invalid, "version must be a positive integer")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, nkms.Errorf(nkms.Invalid, "version must be a positive integer")
	}
	return n, nil
}

type aclStateResponse struct {
	KeyTag       string `json:"keyTag"`
	IsACLEnabled bool   `json:"isAclEnabled"`
}

type aclListResponse struct {
	KeyTag        string   `json:"keyTag"`
	IsACLEnabled  bool     `json:"isAclEnabled"`
	AllowedIPList []string `json:"allowedIpList"`
}

type aclChangeResponse struct {
	KeyTag        string   `json:"keyTag"`
	AllowedIPList []string `json:"allowedIpList"`
}

// aclRequest is the body of Add and Delete ACL Rule; encoding/json also
// matches the old rendering's "IpList".
type aclRequest struct {
	IPList []string `json:"ipList"`
}

type tokenGeneratorResponse struct {
	TokenGeneratorID *string `json:"tokenGeneratorId"`
	Status           string  `json:"status"`
	EnabledDate      *int64  `json:"enabledDate"`
	DisabledDate     *int64  `json:"disabledDate"`
	IssuedTokenCount int     `json:"issuedTokenCount"`
}

type tokenSetRequest struct {
	AccessTokenHours  hours `json:"accessTokenHours"`
	RefreshTokenHours hours `json:"refreshTokenHours"`
}

type tokenSetResponse struct {
	RefreshToken string `json:"refreshToken"`
	AccessToken  string `json:"accessToken"`
}

type accessTokenRequest struct {
	AccessTokenHours hours `json:"accessTokenHours"`
}

type accessTokenResponse struct {
	AccessToken string `json:"accessToken"`
}

// hours is a token lifetime: an integer number of hours, or "UL" (unlimited).
// A decimal string of hours is accepted too, as the spec types it
// "Integer or String".
type hours nkms.Lifetime

func (h *hours) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*h = hours{Hours: n}
		if n == 0 {
			h.Hours = -1 // explicit 0 is out of range, not "default"
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeFor[int]()}
	}
	if s == "UL" {
		*h = hours{Unlimited: true}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s[0] == '+' {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[int]()}
	}
	*h = hours{Hours: n}
	return nil
}

type activityKey struct {
	KeyTag  string `json:"keyTag"`
	KeyName string `json:"keyName"`
	Nrn     string `json:"nrn"`
}

type activityRequestor struct {
	RequestType string `json:"requestType"`
	ID          string `json:"id"`
	IP          string `json:"ip"`
}

type activityAPI struct {
	Result string `json:"result"`
	Action string `json:"action"`
	Type   string `json:"type"`
}

type activityItem struct {
	Timestamp string `json:"timestamp"`
	Data      struct {
		KmsKey    activityKey       `json:"kmsKey"`
		Requestor activityRequestor `json:"requestor"`
		API       activityAPI       `json:"api"`
	} `json:"data"`
	Message string `json:"message"`
}

type activityListResponse struct {
	ActivityLogList []activityItem `json:"activityLogList"`
	PageSize        int            `json:"pageSize"`
	CurrentPageNo   int            `json:"currentPageNo"`
	TotalPageNo     int            `json:"totalPageNo"`
	TotalCount      int            `json:"totalCount"`
}
