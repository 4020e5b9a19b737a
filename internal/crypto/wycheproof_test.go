package crypto

// Wycheproof vectors (github.com/c2sp/wycheproof) run through the same
// unexported wrappers that Key and RootKey call: gcmOpen/gcmSeal, oaepDecrypt,
// pssVerify and ecdsaVerifyDER. "valid" must pass, "invalid" must fail, and
// "acceptable" may do either.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"

	"github.com/c2sp/wycheproof"
)

// hexBytes is a hex string in a Wycheproof file.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	*h = b
	return err
}

type wycheproofTest struct {
	TcID    int `json:"tcId"`
	Comment string
	Flags   []string
	Result  string // "valid", "invalid" or "acceptable"
	Key     hexBytes
	IV      hexBytes
	AAD     hexBytes
	Msg     hexBytes
	CT      hexBytes
	Tag     hexBytes
	Label   hexBytes
	Sig     hexBytes
}

type wycheproofGroup struct {
	KeySize         int      `json:"keySize"`
	IVSize          int      `json:"ivSize"`
	TagSize         int      `json:"tagSize"`
	SLen            int      `json:"sLen"`
	SHA             string   `json:"sha"`
	MGFSHA          string   `json:"mgfSha"`
	PrivateKeyPKCS8 hexBytes `json:"privateKeyPkcs8"`
	PublicKeyDER    hexBytes `json:"publicKeyDer"`
	Tests           []wycheproofTest
}

type wycheproofFile struct {
	Algorithm     string
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []wycheproofGroup
}

func loadWycheproof(t *testing.T, name string) *wycheproofFile {
	t.Helper()
	data, err := fs.ReadFile(wycheproof.TestVectors, name)
	if err != nil {
		t.Fatalf("reading Wycheproof %s: %v", name, err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("parsing Wycheproof %s: %v", name, err)
	}
	return &f
}

// runVectors runs check on every test of the selected groups and checks the
// outcome against the vector's result. It fails if too few tests ran, so that
// a renamed field cannot silently skip everything.
func runVectors(t *testing.T, name string, minTests int, use func(g *wycheproofGroup) bool,
	check func(t *testing.T, g *wycheproofGroup, tc *wycheproofTest) bool) {
	f := loadWycheproof(t, name)
	ran := map[string]int{}
	for gi := range f.TestGroups {
		g := &f.TestGroups[gi]
		if !use(g) {
			continue
		}
		for ti := range g.Tests {
			tc := &g.Tests[ti]
			t.Run(fmt.Sprintf("tc%d", tc.TcID), func(t *testing.T) {
				ok := check(t, g, tc)
				switch {
				case tc.Result == "valid" && !ok:
					t.Errorf("valid vector rejected (%s, flags %v)", tc.Comment, tc.Flags)
				case tc.Result == "invalid" && ok:
					t.Errorf("invalid vector accepted (%s, flags %v)", tc.Comment, tc.Flags)
				}
			})
			ran[tc.Result]++
		}
	}
	if n := ran["valid"] + ran["invalid"] + ran["acceptable"]; n < minTests || ran["valid"] == 0 || ran["invalid"] == 0 {
		t.Fatalf("%s: ran %v, want at least %d with both valid and invalid", name, ran, minTests)
	}
	t.Logf("%s: %v", name, ran)
}

func TestWycheproofAESGCM(t *testing.T) {
	t.Parallel()
	runVectors(t, "aes_gcm_test.json", 60,
		func(g *wycheproofGroup) bool { return g.KeySize == 256 && g.IVSize == 96 && g.TagSize == 128 },
		func(t *testing.T, g *wycheproofGroup, tc *wycheproofTest) bool {
			aead, err := newGCM(tc.Key)
			if err != nil {
				t.Fatalf("newGCM = %v", err)
			}
			body := append(append(append([]byte{}, tc.IV...), tc.CT...), tc.Tag...)
			pt, err := gcmOpen(aead, body, tc.AAD)
			if err != nil {
				return false
			}
			if !bytes.Equal(pt, tc.Msg) {
				t.Errorf("gcmOpen = %x, want %x", pt, tc.Msg)
			}
			if tc.Result == "valid" {
				if got := gcmSeal(aead, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(got, body) {
					t.Errorf("gcmSeal = %x, want %x", got, body)
				}
			}
			return true
		})
}

func TestWycheproofRSAOAEP(t *testing.T) {
	t.Parallel()
	runVectors(t, "rsa_oaep_2048_sha256_mgf1sha256_test.json", 30,
		func(g *wycheproofGroup) bool { return g.KeySize == 2048 && g.SHA == "SHA-256" && g.MGFSHA == "SHA-256" },
		func(t *testing.T, g *wycheproofGroup, tc *wycheproofTest) bool {
			priv, err := x509.ParsePKCS8PrivateKey(g.PrivateKeyPKCS8)
			if err != nil {
				t.Fatalf("ParsePKCS8PrivateKey = %v", err)
			}
			pt, err := oaepDecrypt(priv.(*rsa.PrivateKey), tc.CT, tc.Label)
			if err != nil {
				if err != ErrDecrypt {
					t.Errorf("oaepDecrypt error = %v, want ErrDecrypt", err)
				}
				return false
			}
			if !bytes.Equal(pt, tc.Msg) {
				t.Errorf("oaepDecrypt = %x, want %x", pt, tc.Msg)
			}
			return true
		})
}

func TestWycheproofRSAPSS(t *testing.T) {
	t.Parallel()
	runVectors(t, "rsa_pss_2048_sha256_mgf1_32_test.json", 60,
		func(g *wycheproofGroup) bool { return g.KeySize == 2048 && g.SHA == "SHA-256" && g.MGFSHA == "SHA-256" },
		func(t *testing.T, g *wycheproofGroup, tc *wycheproofTest) bool {
			pub, err := x509.ParsePKIXPublicKey(g.PublicKeyDER)
			if err != nil {
				t.Fatalf("ParsePKIXPublicKey = %v", err)
			}
			return pssVerify(pub.(*rsa.PublicKey), tc.Msg, tc.Sig, g.SLen)
		})
}

func TestWycheproofECDSAP256(t *testing.T) {
	t.Parallel()
	runVectors(t, "ecdsa_secp256r1_sha256_test.json", 400,
		func(g *wycheproofGroup) bool { return g.SHA == "SHA-256" },
		func(t *testing.T, g *wycheproofGroup, tc *wycheproofTest) bool {
			pub, err := x509.ParsePKIXPublicKey(g.PublicKeyDER)
			if err != nil {
				t.Fatalf("ParsePKIXPublicKey = %v", err)
			}
			ok, err := ecdsaVerifyDER(pub.(*ecdsa.PublicKey), tc.Msg, tc.Sig)
			if err != nil && (ok || err != ErrMalformedSignature) {
				t.Errorf("ecdsaVerifyDER = %v, %v; want false, ErrMalformedSignature", ok, err)
			}
			if tc.Result == "valid" && err != nil {
				t.Errorf("valid vector reported as malformed")
			}
			return ok
		})
}
