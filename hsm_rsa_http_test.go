package nkms_test

import (
	"bytes"
	"context"
	gocrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
)

// TestHSMRSAThroughHTTP: an RSA2048 COMMON_HSM key on a server with a
// SoftHSM2 token (whose CKM_RSA_PKCS_OAEP takes only SHA-1, so the token
// runs CKM_RSA_X_509 and nkms decodes OAEP), through signed API 2.0
// requests. What rsa.EncryptOAEP (SHA-256) makes with the API's public key
// decrypts; encrypt and decrypt round trip; a tampered ciphertext, a
// ciphertext of the wrong length and one not below the modulus answer
// exactly as for a BASIC RSA2048 key (400); the token's signatures verify
// with rsa.VerifyPSS (salt 222) and through Verify; rotation makes a second
// token object and version 1's ciphertexts and signatures still work; after
// destruction the key's token objects are gone.
func TestHSMRSAThroughHTTP(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)

	k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-rsa", KeyType: "RSA2048", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatalf("creating an RSA2048 COMMON_HSM key: %v", err)
	}
	if got, err := e.v2.GetKey(ctx, k.KeyTag); err != nil || got.ProtectionType != "COMMON_HSM" {
		t.Fatalf("GetKey: %+v, %v; want protectionType COMMON_HSM", got, err)
	}
	if n := len(e.objects(t)); n != 1 {
		t.Fatalf("token objects after creating an RSA2048 key: %d, want 1 (the pair)", n)
	}
	t.Logf("the token decrypts RSA-OAEP with %s", e.tok.RSADecryptMechanism())
	pemV1, err := e.v2.PublicKey(ctx, k.KeyTag, 0)
	if err != nil {
		t.Fatal(err)
	}
	pub := parsePEM(t, pemV1).(*rsa.PublicKey)

	// The standard library encrypts, the token decrypts.
	body, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("from the stdlib"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := e.v2.Decrypt(ctx, k.KeyTag, crypto.FormatCiphertext(1, body), nil); err != nil || string(pt) != "from the stdlib" {
		t.Fatalf("decrypt of a stdlib OAEP ciphertext: %q, %v", pt, err)
	}
	ct1, err := e.v2.Encrypt(ctx, k.KeyTag, bytes.Repeat([]byte("x"), 190), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := e.v2.Decrypt(ctx, k.KeyTag, ct1, nil); err != nil || len(pt) != 190 {
		t.Fatalf("round trip of 190 bytes: %d bytes, %v", len(pt), err)
	}

	// Bad ciphertexts: the same 400 as for a BASIC key.
	basic, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "basic-rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	basicCT, err := e.v2.Encrypt(ctx, basic.KeyTag, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	basicPub := parsePEM(t, mustPublicKey(t, e, basic.KeyTag)).(*rsa.PublicKey)
	bad := map[string]func(body []byte, n *big.Int) []byte{
		"tampered":  func(b []byte, _ *big.Int) []byte { b = bytes.Clone(b); b[100] ^= 1; return b },
		"255 bytes": func(b []byte, _ *big.Int) []byte { return b[1:] },
		"257 bytes": func(b []byte, _ *big.Int) []byte { return append([]byte{0}, b...) },
		"modulus":   func(_ []byte, n *big.Int) []byte { return n.Bytes() },
		"0xff…":     func(b []byte, _ *big.Int) []byte { return bytes.Repeat([]byte{0xff}, len(b)) },
		"zero":      func(b []byte, _ *big.Int) []byte { return make([]byte, len(b)) },
	}
	for name, mk := range bad {
		_, hb := ncpBody(t, ct1)
		_, bb := ncpBody(t, basicCT)
		_, hsmErr := e.v2.Decrypt(ctx, k.KeyTag, crypto.FormatCiphertext(1, mk(hb, pub.N)), nil)
		_, basicErr := e.v2.Decrypt(ctx, basic.KeyTag, crypto.FormatCiphertext(1, mk(bb, basicPub.N)), nil)
		wantV2Invalid(t, "COMMON_HSM RSA decrypt of "+name, hsmErr)
		if basicErr == nil || hsmErr.Error() != basicErr.Error() {
			t.Errorf("%s: COMMON_HSM answers %q, BASIC %v; want the same", name, hsmErr, basicErr)
		}
	}

	// The token signs (PSS, salt 222), the standard library verifies.
	msg := []byte("signed by the token")
	sig1, err := e.v2.Sign(ctx, k.KeyTag, msg)
	if err != nil {
		t.Fatal(err)
	}
	_, raw := ncpBody(t, sig1)
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPSS(pub, gocrypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: 222, Hash: gocrypto.SHA256}); err != nil {
		t.Errorf("the token's PSS signature does not verify with salt 222: %v", err)
	}
	if ok, err := e.v2.Verify(ctx, k.KeyTag, msg, sig1); !ok || err != nil {
		t.Errorf("Verify of the token's signature: %v, %v", ok, err)
	}
	if ok, err := e.v2.Verify(ctx, k.KeyTag, []byte("other"), sig1); ok || err != nil {
		t.Errorf("Verify of another message: %v, %v; want false", ok, err)
	}

	// Rotation: a second token object; version 1 still decrypts and verifies.
	e.rotate(t, k.KeyTag, ct1)
	if pemV2, err := e.v2.PublicKey(ctx, k.KeyTag, 2); err != nil || pemV2 == pemV1 {
		t.Fatalf("version 2's public key: %v, same as version 1's: %v", err, pemV2 == pemV1)
	}
	if ok, err := e.v2.Verify(ctx, k.KeyTag, msg, sig1); !ok || err != nil {
		t.Errorf("Verify of a version 1 signature after rotation: %v, %v", ok, err)
	}

	// Destruction deletes both versions' token objects.
	if _, err := e.v2.RequestDeletion(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if err := e.v2.DeleteKey(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	for _, o := range e.objects(t) {
		if strings.Contains(o.Label, k.KeyTag) {
			t.Errorf("object %q of a destroyed key is still in the token", o.Label)
		}
	}
	if n := len(e.objects(t)); n != 0 {
		t.Errorf("token objects after destroying the key: %d, want 0", n)
	}
	if _, err := e.v2.Decrypt(ctx, k.KeyTag, ct1, nil); err == nil {
		t.Errorf("decrypt with a destroyed key succeeded")
	}
}

func mustPublicKey(t *testing.T, e *hsmEnv, tag string) string {
	t.Helper()
	p, err := e.v2.PublicKey(context.Background(), tag, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noRSAToken is the token with RSA2048 generation refused as
// hsm.Token.Generate refuses it on a token that decrypts neither with
// CKM_RSA_PKCS_OAEP (SHA-256) nor with CKM_RSA_X_509.
type noRSAToken struct{ *hsm.Token }

func (n noRSAToken) Generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error {
	if alg == crypto.RSA2048 {
		return hsm.ErrTokenMechanism
	}
	return n.Token.Generate(alg, convergent, id, label)
}

// TestHSMRSARefusedByToken: a key type the token cannot keep is refused
// with 400 INVALID_REQUEST naming it, never made in software, and leaves no
// token object; other types still work.
func TestHSMRSARefusedByToken(t *testing.T) {
	e := newHSMEnv(t, true, false)
	e.svc.HSM = noRSAToken{e.tok}
	for range 2 { // the second time without asking the token again
		_, err := e.v2.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "hsm-rsa", KeyType: "RSA2048", ProtectionType: "COMMON_HSM"})
		wantV2Invalid(t, "RSA2048 COMMON_HSM on a token without RSA-OAEP", err)
		if !strings.Contains(err.Error(), "does not support COMMON_HSM RSA2048") {
			t.Errorf("refusal: %q, want it to name COMMON_HSM RSA2048", err)
		}
	}
	if n := len(e.objects(t)); n != 0 {
		t.Fatalf("a refused RSA2048 key left %d token objects", n)
	}
	if keys, err := e.v2.ListKeys(context.Background(), 1, 10); err != nil || keys.TotalCount != 0 {
		t.Fatalf("keys after the refusal: %+v, %v; want none", keys, err)
	}
	if _, err := e.v2.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "hsm-ec", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"}); err != nil {
		t.Fatalf("ECDSA COMMON_HSM after the RSA refusal: %v", err)
	}
	if !errors.Is(hsm.ErrTokenMechanism, crypto.ErrUnsupported) {
		t.Fatal("hsm.ErrTokenMechanism does not wrap crypto.ErrUnsupported")
	}
}

// noHMACToken refuses convergent AES256 keys as hsm.Token.Generate does on
// a token whose CKM_SHA256_HMAC fails its probe.
type noHMACToken struct{ *hsm.Token }

func (n noHMACToken) Generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error {
	if convergent {
		return hsm.ErrTokenMechanism
	}
	return n.Token.Generate(alg, convergent, id, label)
}

// TestHSMConvergentRefusedAlone: a token that cannot keep convergent AES256
// keys refuses those (400 naming them, again without asking the token),
// and still keeps plain AES256 keys, before and after the refusal.
func TestHSMConvergentRefusedAlone(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)
	e.svc.HSM = noHMACToken{e.tok}
	for range 2 {
		_, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "conv", KeyType: "AES256", ProtectionType: "COMMON_HSM", IsConvergent: true})
		wantV2Invalid(t, "convergent AES256 COMMON_HSM on a token without HMAC", err)
		if !strings.Contains(err.Error(), "does not support COMMON_HSM convergent AES256") {
			t.Errorf("refusal: %q, want it to name convergent AES256", err)
		}
	}
	k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "plain", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatalf("plain AES256 COMMON_HSM after the convergent refusal: %v", err)
	}
	if _, err := e.v2.Encrypt(ctx, k.KeyTag, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
}
