//go:build cgo && !noetcd

package hsm_test

import (
	"bytes"
	gocrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
	"sync"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestTokenRSA: an RSA2048 key generated in the token (SoftHSM2, and the
// token of NKMS_TEST_HSM_MODULE when set), checked with the standard
// library. What rsa.EncryptOAEP (SHA-256) makes, the token
// decrypts, through the mechanism the Token probed and through the raw
// CKM_RSA_X_509 path with nkms's decoding whatever was probed; a tampered
// ciphertext, a wrong length, a ciphertext not below the modulus, zero and
// one are crypto.ErrDecrypt, and a label is refused; the token's PSS signatures verify with
// rsa.VerifyPSS and salt 222; the private key cannot be read out; and the
// objects are gone after Destroy.
func TestTokenRSA(t *testing.T) { eachRSAToken(t, testTokenRSA) }

func testTokenRSA(t *testing.T, tok *hsm.Token) {
	if m := tok.RSADecryptMechanism(); m != "" {
		t.Fatalf("RSADecryptMechanism before any RSA key: %q, want \"\"", m)
	}
	id, k := gen(t, tok, crypto.RSA2048, "rsa")
	defer tok.Destroy(id)
	mech := tok.RSADecryptMechanism()
	if mech != hsm.MechOAEP && mech != hsm.MechRaw {
		t.Fatalf("RSADecryptMechanism after an RSA2048 key: %q", mech)
	}
	t.Logf("this token decrypts RSA-OAEP with %s", mech)
	if objs, readable, err := hsm.SecretsReadable(tok, id); err != nil || objs != 1 || readable != 0 {
		t.Fatalf("private key objects %d, readable %d (%v); want 1 and 0 (CKR_ATTRIBUTE_SENSITIVE)", objs, readable, err)
	}
	pub := publicKey(t, k).(*rsa.PublicKey)

	for _, n := range []int{0, 1, 32, 190} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Decrypt(ct, nil); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt of a %d-byte stdlib OAEP ciphertext: got %x, %v", n, got, err)
		}
		if got, err := hsm.DecryptWith(tok, id, hsm.MechRaw, ct, nil); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("CKM_RSA_X_509 decrypt of a %d-byte stdlib OAEP ciphertext: got %x, %v", n, got, err)
		}
		if n == 32 { // and nkms's own encryption (software, public key)
			body, err := k.Encrypt(pt, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := k.Decrypt(body, nil); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("round trip: got %x, %v", got, err)
			}
		}
	}

	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	labelled, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("secret"), []byte("label"))
	if err != nil {
		t.Fatal(err)
	}
	sha1ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := pub.N.Bytes()
	nPlus := new(big.Int).Add(pub.N, big.NewInt(1)).Bytes()
	one := make([]byte, 256)
	one[255] = 1
	bad := map[string][]byte{
		"empty":               {},
		"255 bytes":           ct[1:],
		"257 bytes":           append([]byte{0}, ct...),
		"the modulus":         n,
		"modulus + 1":         nPlus,
		"all 0xff":            bytes.Repeat([]byte{0xff}, 256),
		"zero":                make([]byte, 256),
		"one":                 one,
		"another label":       labelled,
		"SHA-1 OAEP":          sha1ct,
		"first byte flipped":  flip(ct, 0),
		"middle byte flipped": flip(ct, 128),
		"last byte flipped":   flip(ct, 255),
	}
	for name, c := range bad {
		if got, err := k.Decrypt(c, nil); !errors.Is(err, crypto.ErrDecrypt) || got != nil {
			t.Errorf("Decrypt(%s): got %x, %v; want crypto.ErrDecrypt", name, got, err)
		}
		for _, m := range []string{hsm.MechRaw, mech} {
			if got, err := hsm.DecryptWith(tok, id, m, c, nil); !errors.Is(err, crypto.ErrDecrypt) || got != nil {
				t.Errorf("%s decrypt of %s: got %x, %v; want crypto.ErrDecrypt", m, name, got, err)
			}
		}
	}

	d, err := hsm.RSADecrypter(tok, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decrypt(nil, labelled, &rsa.OAEPOptions{Hash: gocrypto.SHA256, Label: []byte("label")}); !errors.Is(err, crypto.ErrUnsupported) {
		t.Errorf("Decrypt with a label: got %v, want crypto.ErrUnsupported", err)
	}
	if got, err := hsm.DecryptWith(tok, id, hsm.MechRaw, labelled, []byte("label")); err != nil || string(got) != "secret" {
		t.Errorf("CKM_RSA_X_509 decrypt with the label: got %q, %v", got, err)
	}

	msg := []byte("message to sign")
	digest := sha256.Sum256(msg)
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPSS(pub, gocrypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: 222, Hash: gocrypto.SHA256}); err != nil {
		t.Errorf("token PSS signature does not verify with salt 222: %v", err)
	}
	if ok, err := k.Verify(msg, sig); !ok || err != nil {
		t.Errorf("Verify of the token's PSS signature: %v %v", ok, err)
	}

	if err := tok.Destroy(id); err != nil {
		t.Fatal(err)
	}
	objs, err := tok.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if bytes.Equal(o.ID, id) {
			t.Errorf("object %q is still in the token after Destroy", o.Label)
		}
	}
	if _, err := tok.Load(crypto.RSA2048, false, id); !errors.Is(err, hsm.ErrNoObject) {
		t.Errorf("Load after Destroy: got %v, want ErrNoObject", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// TestTokenRSAReopen: a second Token on the same token (a restart) loads
// an existing RSA2048 key and probes its mechanism with it on the first
// decryption; many goroutines then decrypt at once (the session pool,
// under -race), and Close waits for none of them to be left.
func TestTokenRSAReopen(t *testing.T) {
	cfg := hsmtest.NewToken(t)
	tok, err := hsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, k := gen(t, tok, crypto.RSA2048, "rsa")
	pub := publicKey(t, k).(*rsa.PublicKey)
	want := tok.RSADecryptMechanism()
	if err := tok.Close(); err != nil {
		t.Fatal(err)
	}

	tok2, err := hsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok2.Close()
	k2, err := tok2.Load(crypto.RSA2048, false, id)
	if err != nil {
		t.Fatal(err)
	}
	if m := tok2.RSADecryptMechanism(); m != "" {
		t.Fatalf("mechanism of a reopened token before a decryption: %q, want \"\"", m)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := []byte{byte(i), 1, 2, 3}
			ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, pt, nil)
			if err == nil {
				var got []byte
				got, err = k2.Decrypt(ct, nil)
				if err == nil && !bytes.Equal(got, pt) {
					err = errors.New("wrong plaintext")
				}
			}
			if err == nil && i%4 == 0 {
				_, err = k2.Decrypt(flip(ct, 3), nil)
				if errors.Is(err, crypto.ErrDecrypt) {
					err = nil
				} else {
					err = errors.Join(errors.New("a tampered ciphertext did not give ErrDecrypt"), err)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := tok2.RSADecryptMechanism(); got != want {
		t.Errorf("mechanism probed on reopen: %q, want %q as at generation", got, want)
	}
}

// eachRSAToken runs f on a fresh SoftHSM2 token and, when
// NKMS_TEST_HSM_MODULE, NKMS_TEST_HSM_TOKEN and NKMS_TEST_HSM_PIN name one,
// on another PKCS#11 token (a real HSM, opencryptoki): the RSA tests check
// both RSA-OAEP paths there too and leave no object behind. CI sets none.
func eachRSAToken(t *testing.T, f func(t *testing.T, tok *hsm.Token)) {
	t.Run("softhsm2", func(t *testing.T) { f(t, hsmtest.Open(t)) })
	cfg := hsm.Config{Module: os.Getenv("NKMS_TEST_HSM_MODULE"), Token: os.Getenv("NKMS_TEST_HSM_TOKEN"), PIN: os.Getenv("NKMS_TEST_HSM_PIN")}
	if cfg.Module == "" {
		return
	}
	t.Run("external", func(t *testing.T) {
		tok, err := hsm.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tok.Close()
		f(t, tok)
	})
}
