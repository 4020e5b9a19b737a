// Package sigv2 implements NAVER Cloud Platform's API gateway signature v2,
// the HMAC-SHA256 request signature that authenticates account requests to
// KMS (decisions.md D2). The client signs with SignRequest; the server reads
// the headers with FromRequest, checks the clock with CheckTimestamp and the
// MAC with Verify.
//
// The string to sign is
//
//	METHOD + " " + requestURI + "\n" + timestamp + "\n" + accessKey
//
// where requestURI is the escaped path plus "?" and the raw query when there
// is a query (never a bare "?"), and timestamp is Unix milliseconds in
// decimal. The signature is the standard, padded Base64 of the 32-byte MAC
// keyed with the secret key. The body is not signed.
package sigv2

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"time"

	"github.com/nkms/nkms/internal/crypto"
)

// Header names of account authentication.
const (
	HeaderTimestamp   = "x-ncp-apigw-timestamp"
	HeaderAccessKey   = "x-ncp-iam-access-key"
	HeaderSignatureV2 = "x-ncp-apigw-signature-v2"
	// HeaderSignatureV1 carries the same HMAC-SHA256 value in requests of
	// API 1.0 clients; it is read only when HeaderSignatureV2 is absent.
	HeaderSignatureV1 = "x-ncp-apigw-signature-v1"
)

// The header names in the form http.Header keeps them: Header.Get with a
// name already in this form looks it up without making a canonical copy.
var (
	canonicalTimestamp   = http.CanonicalHeaderKey(HeaderTimestamp)
	canonicalAccessKey   = http.CanonicalHeaderKey(HeaderAccessKey)
	canonicalSignatureV2 = http.CanonicalHeaderKey(HeaderSignatureV2)
	canonicalSignatureV1 = http.CanonicalHeaderKey(HeaderSignatureV1)
)

// signatureLen is the length of a signature: the padded Base64 of a
// SHA-256 MAC.
const signatureLen = (sha256.Size + 2) / 3 * 4

// MaxSkew is the smallest difference between a request timestamp and the
// verifier's clock that makes the request stale.
const MaxSkew = 5 * time.Minute

// maxTimestampDigits bounds the length of a timestamp: every int64 fits in 19
// decimal digits.
const maxTimestampDigits = 19

// Errors returned by FromRequest and CheckTimestamp. Compare with errors.Is.
var (
	// ErrMissing means an authentication header is absent or empty.
	ErrMissing = errors.New("sigv2: missing authentication header")
	// ErrMalformed means the timestamp is not a decimal integer of milliseconds.
	ErrMalformed = errors.New("sigv2: malformed timestamp")
	// ErrStale means the timestamp differs from the clock by MaxSkew or more.
	ErrStale = errors.New("sigv2: stale timestamp")
)

// Sign returns the signature v2 of one request:
// Base64Std(HMAC-SHA256(secret, method+" "+requestURI+"\n"+timestamp+"\n"+accessKey)).
func Sign(secret []byte, method, requestURI, timestamp, accessKey string) string {
	return sign(NewMAC(secret), method, requestURI, timestamp, accessKey)
}

// NewMAC returns the keyed HMAC-SHA256 that signs with secret, for
// VerifyMAC. A verifier may keep it and use it again: VerifyMAC resets it.
func NewMAC(secret []byte) hash.Hash { return crypto.NewMAC(secret) }

// sign resets mac (a NewMAC) and returns the signature it makes of one request.
func sign(mac hash.Hash, method, requestURI, timestamp, accessKey string) string {
	return base64.StdEncoding.EncodeToString(sum(mac, method, requestURI, timestamp, accessKey))
}

// sum resets mac (a NewMAC) and returns the MAC of one request.
func sum(mac hash.Hash, method, requestURI, timestamp, accessKey string) []byte {
	// The string to sign in one Write.
	msg := make([]byte, 0, len(method)+len(requestURI)+len(timestamp)+len(accessKey)+3)
	msg = append(msg, method...)
	msg = append(msg, ' ')
	msg = append(msg, requestURI...)
	msg = append(msg, '\n')
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, accessKey...)
	mac.Reset()
	mac.Write(msg)
	return mac.Sum(msg[:0]) // msg is done with: the MAC takes its place
}

// SignRequest sets the timestamp (now, in Unix milliseconds), access key and
// signature v2 headers of r. It signs what net/http sends as the request
// target, r.URL.RequestURI(), but never with a bare "?": when the query is
// empty it clears r.URL.ForceQuery, so that the wire and the signature agree.
// An empty r.Method is signed as GET, as net/http sends it.
func SignRequest(r *http.Request, accessKey string, secret []byte, now time.Time) {
	if r.URL.RawQuery == "" {
		r.URL.ForceQuery = false
	}
	method := r.Method
	if method == "" { // net/http sends GET
		method = http.MethodGet
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderAccessKey, accessKey)
	r.Header.Set(HeaderSignatureV2, Sign(secret, method, r.URL.RequestURI(), ts, accessKey))
}

// Credentials are the authentication headers of one request.
type Credentials struct {
	AccessKey string
	Timestamp string
	Signature string
}

// FromRequest reads the credentials of r. The signature comes from
// HeaderSignatureV2 or, when that is absent or empty, HeaderSignatureV1. The
// error wraps ErrMissing and names the first absent header.
func FromRequest(r *http.Request) (Credentials, error) {
	c := Credentials{
		Timestamp: r.Header.Get(canonicalTimestamp),
		AccessKey: r.Header.Get(canonicalAccessKey),
		Signature: r.Header.Get(canonicalSignatureV2),
	}
	if c.Signature == "" {
		c.Signature = r.Header.Get(canonicalSignatureV1)
	}
	switch {
	case c.Timestamp == "":
		return Credentials{}, fmt.Errorf("%w: %s", ErrMissing, HeaderTimestamp)
	case c.AccessKey == "":
		return Credentials{}, fmt.Errorf("%w: %s", ErrMissing, HeaderAccessKey)
	case c.Signature == "":
		return Credentials{}, fmt.Errorf("%w: %s", ErrMissing, HeaderSignatureV2)
	}
	return c, nil
}

// CheckTimestamp checks that ts is a decimal integer of Unix milliseconds
// (ASCII digits only: no sign, spaces, fraction or prefix; at most 19 digits;
// within the range of int64) and that it differs from now by less than
// MaxSkew, in either direction. It returns an error wrapping ErrMalformed or
// ErrStale.
func CheckTimestamp(ts string, now time.Time) error {
	ms, err := parseMillis(ts)
	if err != nil {
		return err
	}
	d := now.Sub(time.UnixMilli(ms)) // saturates instead of overflowing
	if d >= MaxSkew || d <= -MaxSkew {
		return ErrStale
	}
	return nil
}

func parseMillis(ts string) (int64, error) {
	if ts == "" || len(ts) > maxTimestampDigits {
		return 0, ErrMalformed
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return 0, ErrMalformed
		}
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil { // only a 19-digit value above math.MaxInt64 gets here
		return 0, ErrMalformed
	}
	return ms, nil
}

// Verify reports whether c.Signature is the signature of the request
// (method, requestURI) by c.AccessKey at c.Timestamp under secret. It
// compares the canonical Base64 text in constant time with hmac.Equal, so
// that no alternative encoding of the MAC is accepted. It does not check the
// timestamp; call CheckTimestamp for that.
func Verify(secret []byte, method, requestURI string, c Credentials) bool {
	return VerifyMAC(NewMAC(secret), method, requestURI, c)
}

// VerifyMAC is Verify with mac = NewMAC(secret), which a server may keep per
// access key instead of keying a new HMAC for every request. mac must not be
// used by another goroutine at the same time.
func VerifyMAC(mac hash.Hash, method, requestURI string, c Credentials) bool {
	var want [signatureLen]byte
	base64.StdEncoding.Encode(want[:], sum(mac, method, requestURI, c.Timestamp, c.AccessKey))
	return hmac.Equal(want[:], []byte(c.Signature))
}
