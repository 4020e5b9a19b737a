package client

import (
	"encoding/json"
	"fmt"
)

// The JSON names of every struct in this file are the wire names of
// ncp-kms-api.md §6. Times are Unix milliseconds; nullable times are *int64.

// CreateKeyRequest is the body of Create Key.
type CreateKeyRequest struct {
	KeyName        string `json:"keyName"`
	KeyType        string `json:"keyType"`                  // AES256, RSA2048 or ECDSA
	ProtectionType string `json:"protectionType,omitempty"` // BASIC or COMMON_HSM
	IsAutoRotation bool   `json:"isAutoRotation"`
	RotationPeriod int    `json:"rotationPeriod,omitempty"` // days, 1-730; 0 = server default
	Memo           string `json:"memo,omitempty"`
	IsConvergent   bool   `json:"isConvergent,omitempty"`
}

// Key is the data of Create Key and Get Key Info. Nrn, BaseURL and
// CurrentVersion are filled by Get Key Info.
type Key struct {
	KeyID            int64  `json:"keyId"`
	KeyTag           string `json:"keyTag"`
	KeyName          string `json:"keyName"`
	Nrn              string `json:"nrn,omitempty"`
	BaseURL          string `json:"baseUrl,omitempty"`
	KeyType          string `json:"keyType"`
	Status           string `json:"status"` // ENABLE, DISABLE or REVOKE
	KeystoreID       int64  `json:"keystoreId"`
	CurrentVersion   int    `json:"currentVersion,omitempty"`
	ProtectionType   string `json:"protectionType"`
	Memo             string `json:"memo"`
	IsConvergent     bool   `json:"isConvergent"`
	IsAutoRotation   bool   `json:"isAutoRotation"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
	RegisterDate     int64  `json:"registerDate"`
	DestroyDate      *int64 `json:"destroyDate"`
}

// KeyList is the data of Get Key List.
type KeyList struct {
	KeyList       []KeySummary `json:"keyList"`
	CurrentPageNo int          `json:"currentPageNo"`
	TotalPageNo   int          `json:"totalPageNo"`
	TotalCount    int          `json:"totalCount"`
}

// KeySummary is one item of a KeyList.
type KeySummary struct {
	KeyID          int64  `json:"keyId"`
	KeyTag         string `json:"keyTag"`
	KeyName        string `json:"keyName"`
	KeyType        string `json:"keyType"`
	Status         string `json:"status"`
	ProtectionType string `json:"protectionType"`
	IsConvergent   bool   `json:"isConvergent"`
	RegisterDate   int64  `json:"registerDate"`
	DestroyDate    *int64 `json:"destroyDate"` // set only for REVOKE keys
}

// StatusChange is the data of Enable Key, Disable Key, Request Key Deletion
// and Cancel Key Deletion.
type StatusChange struct {
	KeyTag     string `json:"keyTag"`
	Status     string `json:"status"`
	StatusDate int64  `json:"statusDate"`
}

// NameChange is the data of Update Key Name.
type NameChange struct {
	KeyTag  string `json:"keyTag"`
	KeyName string `json:"keyName"`
}

// MemoChange is the data of Update Memo.
type MemoChange struct {
	KeyTag string `json:"keyTag"`
	Memo   string `json:"memo"`
}

// Rotation is the data of Rotate Key.
type Rotation struct {
	KeyTag      string `json:"keyTag"`
	Version     int    `json:"version"` // the new current version
	RotatedDate int64  `json:"rotatedDate"`
}

// AutoRotation is the data of Enable and Disable Auto Rotation. Disable
// answers only KeyTag and IsAutoRotation.
type AutoRotation struct {
	KeyTag           string `json:"keyTag"`
	IsAutoRotation   bool   `json:"isAutoRotation"`
	RotationPeriod   int    `json:"rotationPeriod,omitempty"`
	NextRotationDate *int64 `json:"nextRotationDate,omitempty"`
}

// RotationPeriodChange is the data of Update Rotation Period.
type RotationPeriodChange struct {
	KeyTag           string `json:"keyTag"`
	RotationPeriod   int    `json:"rotationPeriod"`
	NextRotationDate *int64 `json:"nextRotationDate"`
}

// VersionList is the data of Get Key Version List.
type VersionList struct {
	KeyTag         string    `json:"keyTag"`
	CurrentVersion int       `json:"currentVersion"`
	VersionList    []Version `json:"versionList"`
}

// Version is one item of a VersionList.
type Version struct {
	Version     int    `json:"version"`
	Status      string `json:"status"` // ENABLE or DISABLE
	StatusDate  int64  `json:"statusDate"`
	RotatedDate int64  `json:"rotatedDate"`
}

// VersionStatus is the data of Enable and Disable Key Version.
type VersionStatus struct {
	Version    int    `json:"version"`
	Status     string `json:"status"`
	StatusDate int64  `json:"statusDate"`
}

// CustomKeyRequest is the body of Create Custom Key. Context is sent as
// standard Base64 (encoding/json encodes []byte that way) and only when not
// empty; it is required for convergent keys.
type CustomKeyRequest struct {
	RequestPlainKey bool   `json:"requestPlainKey"`
	Bits            int    `json:"bits,omitempty"` // 128, 256 or 512; 0 = server default (256)
	Context         []byte `json:"context,omitempty"`
}

// CustomKey is the data of Create Custom Key: fresh key material encrypted
// under the KMS key, and the raw material itself when it was requested.
type CustomKey struct {
	Ciphertext string `json:"ciphertext"`          // ncpkms:v<N>:...
	Plaintext  []byte `json:"plaintext,omitempty"` // decoded from Base64; nil unless requested
	KeyVersion int    `json:"key_version"`
}

// AccessKeyCredentials is the data of nkms's Create Access Key. String and
// GoString hide SecretKey, so that printing the value does not leak it.
type AccessKeyCredentials struct {
	AccessKey  string `json:"accessKey"`
	SecretKey  string `json:"secretKey"`
	KeystoreID int64  `json:"keystoreId"`
	Role       string `json:"role"`
}

// String describes a without its secret key.
func (a AccessKeyCredentials) String() string {
	return fmt.Sprintf("access key %s (keystore %d, role %s)", a.AccessKey, a.KeystoreID, a.Role)
}

// GoString describes a without its secret key.
func (a AccessKeyCredentials) GoString() string {
	return fmt.Sprintf("client.AccessKeyCredentials{AccessKey:%q, SecretKey:<redacted>, KeystoreID:%d, Role:%q}",
		a.AccessKey, a.KeystoreID, a.Role)
}

// AccessKey is one item of nkms's List Access Keys.
type AccessKey struct {
	AccessKey   string `json:"accessKey"`
	KeystoreID  int64  `json:"keystoreId"`
	Role        string `json:"role"`
	CreatedDate int64  `json:"createdDate"`
}

// Wire types of the crypto operations; callers see raw bytes instead.

type encryptBody struct {
	Plaintext any    `json:"plaintext"` // string or []string
	Context   []byte `json:"context,omitempty"`
}

type decryptBody struct {
	Ciphertext any    `json:"ciphertext"` // string or []string
	Context    []byte `json:"context,omitempty"`
}

type signBody struct {
	Data      []byte `json:"data"`
	Signature string `json:"signature,omitempty"`
}

type publicKeyBody struct {
	KeyVersion int `json:"keyVersion,omitempty"`
}

// flexBool decodes a JSON boolean, or the strings "true" and "false" that
// the NAVER documentation also shows for Verify's valid.
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`:
		*b = false
	default:
		var v bool
		return json.Unmarshal(p, &v) // reports a type error
	}
	return nil
}
