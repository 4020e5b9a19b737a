package hsm

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
)

// The decoder is checked against the standard library: for an encoded
// message em below the modulus, c = em^e mod n is a ciphertext whose raw
// decryption is em, so rsa.DecryptOAEP(c) and decodeOAEP(em) must agree,
// error for error and byte for byte.

var (
	oaepKeyOnce sync.Once
	oaepKey     *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	oaepKeyOnce.Do(func() {
		var err error
		if oaepKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return oaepKey
}

// rawDecrypt is the raw RSA private-key operation (what CKM_RSA_X_509 does
// in a token), left-padded to the modulus size.
func rawDecrypt(priv *rsa.PrivateKey, c []byte) []byte {
	m := new(big.Int).Exp(new(big.Int).SetBytes(c), priv.D, priv.N)
	return m.FillBytes(make([]byte, priv.Size()))
}

// rawEncrypt is the raw public-key operation.
func rawEncrypt(pub *rsa.PublicKey, em []byte) []byte {
	c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, pub.Size()))
}

// encodeOAEP is EME-OAEP encoding (RFC 8017, 7.1.1 step 2) with SHA-256,
// written out here apart from the decoder: em = 0x00 ‖ maskedSeed ‖ maskedDB.
func encodeOAEP(msg, seed, label []byte, k int) []byte {
	hLen := sha256.Size
	lHash := sha256.Sum256(label)
	db := make([]byte, k-hLen-1)
	copy(db, lHash[:])
	db[len(db)-len(msg)-1] = 1
	copy(db[len(db)-len(msg):], msg)
	s := bytes.Clone(seed)
	mgf := func(seed []byte, n int) []byte {
		var out []byte
		for c := uint32(0); len(out) < n; c++ {
			h := sha256.New()
			h.Write(seed)
			h.Write([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
			out = h.Sum(out)
		}
		return out[:n]
	}
	for i, b := range mgf(s, len(db)) {
		db[i] ^= b
	}
	for i, b := range mgf(db, hLen) {
		s[i] ^= b
	}
	return append(append([]byte{0}, s...), db...)
}

// TestDecodeOAEPStdlib: what rsa.EncryptOAEP makes decodes to the message
// (with and without a label, every message length up to the limit), and
// tampered ciphertexts give the same answer as rsa.DecryptOAEP: ErrDecrypt.
func TestDecodeOAEPStdlib(t *testing.T) {
	priv := testRSAKey(t)
	k := priv.Size()
	for _, label := range [][]byte{nil, []byte("a label")} {
		for n := 0; n <= k-2*sha256.Size-2; n += 19 {
			msg := bytes.Repeat([]byte{0xa5}, n)
			c, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, label)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeOAEP(rawDecrypt(priv, c), k, label)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("decodeOAEP of a %d-byte message, label %q: got %x, %v", n, label, got, err)
			}
			if _, err := decodeOAEP(rawDecrypt(priv, c), k, []byte("other")); !errors.Is(err, crypto.ErrDecrypt) {
				t.Errorf("decodeOAEP with another label: got %v, want ErrDecrypt", err)
			}
			for _, i := range []int{0, 1, 100, k - 1} {
				bad := bytes.Clone(c)
				bad[i] ^= 0x10
				_, werr := rsa.DecryptOAEP(sha256.New(), nil, priv, bad, label)
				em := rawDecrypt(priv, bad)
				_, gerr := decodeOAEP(em, k, label)
				if (werr == nil) != (gerr == nil) || (gerr != nil && gerr != crypto.ErrDecrypt) {
					t.Errorf("tampered at %d: decodeOAEP %v, rsa.DecryptOAEP %v", i, gerr, werr)
				}
			}
		}
	}
	for _, em := range [][]byte{nil, {0}, make([]byte, 65), make([]byte, k-1), make([]byte, k+1)} {
		if _, err := decodeOAEP(em, k, nil); err != crypto.ErrDecrypt {
			t.Errorf("decodeOAEP of %d bytes with k %d: got %v, want ErrDecrypt", len(em), k, err)
		}
	}
	// Encodings that break one rule each.
	good := encodeOAEP([]byte("msg"), bytes.Repeat([]byte{7}, 32), nil, k)
	if got, err := decodeOAEP(bytes.Clone(good), k, nil); err != nil || string(got) != "msg" {
		t.Fatalf("decodeOAEP of encodeOAEP: %q, %v", got, err)
	}
	firstByte := bytes.Clone(good)
	firstByte[0] = 1
	if _, err := decodeOAEP(firstByte, k, nil); err != crypto.ErrDecrypt {
		t.Errorf("a leading byte other than 0: got %v, want ErrDecrypt", err)
	}
}

func TestLeftPad(t *testing.T) {
	if got, err := leftPad([]byte{1, 2}, 4); err != nil || !bytes.Equal(got, []byte{0, 0, 1, 2}) {
		t.Errorf("leftPad short: %x, %v", got, err)
	}
	if got, err := leftPad([]byte{1, 2, 3, 4}, 4); err != nil || !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Errorf("leftPad exact: %x, %v", got, err)
	}
	if _, err := leftPad([]byte{1, 2, 3, 4, 5}, 4); err != crypto.ErrDecrypt {
		t.Errorf("leftPad long: %v, want ErrDecrypt", err)
	}
}

// FuzzDecodeOAEP: on any input decodeOAEP never panics and answers a
// message or crypto.ErrDecrypt; it agrees with rsa.DecryptOAEP on the
// ciphertext whose raw decryption is that input; and a valid encoding of
// any message with any seed and label decodes back to the message.
func FuzzDecodeOAEP(f *testing.F) {
	priv := testRSAKey(f)
	k := priv.Size()
	f.Add([]byte{}, []byte("message"), []byte{}, []byte("seed"))
	f.Add(bytes.Repeat([]byte{0}, k), []byte{}, []byte("label"), bytes.Repeat([]byte{1}, 32))
	f.Add(encodeOAEP([]byte("hi"), make([]byte, 32), nil, k), []byte("hi"), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, em, msg, label, seed []byte) {
		// Any input: never a panic; a message or ErrDecrypt.
		in := bytes.Clone(em)
		got, err := decodeOAEP(in, k, label)
		if err != nil && err != crypto.ErrDecrypt {
			t.Fatalf("decodeOAEP error %v, want ErrDecrypt", err)
		}
		if len(em) == k && new(big.Int).SetBytes(em).Cmp(priv.N) < 0 {
			want, werr := rsa.DecryptOAEP(sha256.New(), nil, priv, rawEncrypt(&priv.PublicKey, em), label)
			if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("decodeOAEP = %x, %v; rsa.DecryptOAEP = %x, %v", got, err, want, werr)
			}
		}
		// A valid encoding round-trips.
		if len(msg) > k-2*sha256.Size-2 {
			msg = msg[:k-2*sha256.Size-2]
		}
		s := make([]byte, sha256.Size)
		copy(s, seed)
		enc := encodeOAEP(msg, s, label, k)
		got, err = decodeOAEP(enc, k, label)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip of %x: got %x, %v", msg, got, err)
		}
	})
}
