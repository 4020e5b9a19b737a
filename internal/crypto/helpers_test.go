package crypto

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"sync"
	"testing"
)

// testKeySet holds one loaded key of every kind, generated once per test
// binary because RSA key generation is slow. Keys are safe for concurrent use,
// so parallel tests share them.
type testKeySet struct {
	aes, aesConv, rsa, ec *Key
	// material of each key, to check it never leaks through String or fmt.
	aesMat, aesConvMat, rsaMat, ecMat []byte
}

var testKeys = sync.OnceValues(func() (*testKeySet, error) {
	s := &testKeySet{}
	for _, c := range []struct {
		alg        Algorithm
		convergent bool
		key        **Key
		mat        *[]byte
	}{
		{AES256, false, &s.aes, &s.aesMat},
		{AES256, true, &s.aesConv, &s.aesConvMat},
		{RSA2048, false, &s.rsa, &s.rsaMat},
		{ECDSA, false, &s.ec, &s.ecMat},
	} {
		m, err := GenerateMaterial(c.alg)
		if err != nil {
			return nil, err
		}
		k, err := LoadKey(c.alg, c.convergent, m)
		if err != nil {
			return nil, err
		}
		*c.key, *c.mat = k, m
	}
	return s, nil
})

func keys(tb testing.TB) *testKeySet {
	tb.Helper()
	s, err := testKeys()
	if err != nil {
		tb.Fatalf("generating test keys: %v", err)
	}
	return s
}

// katFile is testdata/kat.json, written by testdata/gen_kat.py with
// pyca/cryptography, an implementation independent of Go's.
type katFile struct {
	Root struct {
		File, AD, Plaintext, Sealed string
	}
	AESConvergent struct {
		Material, Context, Plaintext, Body string
	} `json:"aes_convergent"`
	AES struct {
		Material, Plaintext, Body string
	}
	RSA struct {
		Material                  string
		PublicPEM                 string `json:"public_pem"`
		Plaintext, Body, Msg, Sig string
	}
	ECDSA struct {
		Material  string
		PublicPEM string `json:"public_pem"`
		Msg, Sig  string
	}
}

var loadKAT = sync.OnceValues(func() (*katFile, error) {
	data, err := os.ReadFile("testdata/kat.json")
	if err != nil {
		return nil, err
	}
	var k katFile
	return &k, json.Unmarshal(data, &k)
})

func kat(tb testing.TB) *katFile {
	tb.Helper()
	k, err := loadKAT()
	if err != nil {
		tb.Fatalf("loading testdata/kat.json: %v", err)
	}
	return k
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func flip(b []byte, i int, mask byte) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= mask
	return c
}
