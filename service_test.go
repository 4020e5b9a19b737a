package nkms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"hash"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

var (
	alice = nkms.Caller{AccessKey: "alice", Keystore: 1, Role: nkms.RoleAdmin}
	bob   = nkms.Caller{AccessKey: "bob", Keystore: 2, Role: nkms.RoleAdmin}
)

func newService(t testing.TB) (*nkms.Service, *testkit.Clock) {
	t.Helper()
	root := testkit.RootKey(t)
	clk := testkit.NewClock(t0)
	return &nkms.Service{Store: mem.New(), Root: root, Now: clk.Now, DeletionWindow: nkms.DefaultDeletionWindow}, clk
}

func create(t *testing.T, s *nkms.Service, c nkms.Caller, name string, typ nkms.KeyType, convergent bool) *nkms.Key {
	t.Helper()
	k, err := s.CreateKey(context.Background(), c, nkms.CreateKeyInput{Name: name, Type: typ, Convergent: convergent})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k
}

// wantErr fails unless err is the sentinel want (errors.Is).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func wantCode(t *testing.T, err error, code nkms.Code) {
	t.Helper()
	if got := nkms.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func TestCreateKeyDefaults(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	k := create(t, s, alice, "first", nkms.AES256, false)
	if k.ID < 1 || len(k.Tag) != 64 || k.State != nkms.StateEnable || k.Protection != nkms.ProtectionBasic ||
		k.RotationPeriod != 90 || k.Current() != 1 || !k.Registered.Equal(t0) || k.Keystore != 1 {
		t.Fatalf("unexpected key %+v", k)
	}
	for i, in := range []nkms.CreateKeyInput{
		{Name: "x", Type: nkms.AES256},
		{Name: "good", Type: "DES"},
		{Name: "good", Type: nkms.AES256, Protection: "HSM"},
		{Name: "good", Type: nkms.ECDSA, Convergent: true},
		{Name: "good", Type: nkms.AES256, RotationPeriod: 731},
		{Name: "good", Type: nkms.AES256, Memo: strings.Repeat("m", 101)},
	} {
		_, err := s.CreateKey(context.Background(), alice, in)
		if nkms.ErrorCode(err) != nkms.Invalid {
			t.Errorf("case %d: got %v, want Invalid", i, err)
		}
	}
	_, err := s.CreateKey(context.Background(), alice, nkms.CreateKeyInput{Name: "FIRST", Type: nkms.RSA2048})
	wantCode(t, err, nkms.Conflict)
	if _, err := s.CreateKey(context.Background(), bob, nkms.CreateKeyInput{Name: "first", Type: nkms.RSA2048}); err != nil {
		t.Fatalf("same name in another keystore: %v", err)
	}
}

// TestKeystoreIsolation: a key of another keystore answers exactly like a key
// that does not exist, for every operation.
func TestKeystoreIsolation(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	ctx := context.Background()
	k := create(t, s, alice, "secret", nkms.RSA2048, false)
	ct, err := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("x")}, "")
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"get":      func() error { _, err := s.GetKey(ctx, bob, k.KeyTag()); return err },
		"enable":   func() error { _, err := s.EnableKey(ctx, bob, k.KeyTag()); return err },
		"disable":  func() error { _, err := s.DisableKey(ctx, bob, k.KeyTag()); return err },
		"name":     func() error { _, err := s.UpdateName(ctx, bob, k.KeyTag(), "mine"); return err },
		"memo":     func() error { _, err := s.UpdateMemo(ctx, bob, k.KeyTag(), "x"); return err },
		"rotate":   func() error { _, err := s.Rotate(ctx, bob, k.KeyTag()); return err },
		"auto-on":  func() error { _, err := s.EnableAutoRotation(ctx, bob, k.KeyTag()); return err },
		"auto-off": func() error { _, err := s.DisableAutoRotation(ctx, bob, k.KeyTag()); return err },
		"period":   func() error { _, err := s.UpdateRotationPeriod(ctx, bob, k.KeyTag(), 10); return err },
		"version": func() error {
			_, err := s.SetVersionState(ctx, bob, k.KeyTag(), 1, nkms.StateEnable)
			return err
		},
		"request": func() error { _, err := s.RequestDeletion(ctx, bob, k.KeyTag()); return err },
		"cancel":  func() error { _, err := s.CancelDeletion(ctx, bob, k.KeyTag()); return err },
		"delete":  func() error { return s.DeleteKey(ctx, bob, k.KeyTag()) },
		"encrypt": func() error {
			_, err := s.Encrypt(ctx, bob, k.KeyTag(), [][]byte{[]byte("x")}, "")
			return err
		},
		"decrypt":    func() error { _, err := s.Decrypt(ctx, bob, k.KeyTag(), ct.Values, ""); return err },
		"re-encrypt": func() error { _, err := s.ReEncrypt(ctx, bob, k.KeyTag(), ct.Values, ""); return err },
		"custom":     func() error { _, err := s.CreateCustomKey(ctx, bob, k.KeyTag(), 0, false, ""); return err },
		"sign":       func() error { _, err := s.Sign(ctx, bob, k.KeyTag(), []byte("m")); return err },
		"verify": func() error {
			_, err := s.Verify(ctx, bob, k.KeyTag(), []byte("m"), ct.Values[0])
			return err
		},
		"public": func() error { _, err := s.PublicKey(ctx, bob, k.KeyTag(), 0); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, nkms.ErrKeyNotFound) {
			t.Errorf("%s by another keystore: got %v, want ErrKeyNotFound", name, err)
		}
	}
	keys, total, err := s.ListKeys(ctx, bob, 1, 100)
	if err != nil || total != 0 || len(keys) != 0 {
		t.Fatalf("bob lists %d/%d keys (%v), want none", len(keys), total, err)
	}
	if got, err := s.GetKey(ctx, alice, parseTag(t, strings.ToUpper(k.Tag))); err != nil || got.Tag != k.Tag {
		t.Fatalf("upper-case tag lookup: %v", err)
	}
}

func TestEncryptDecryptAcrossRotations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, typ := range []nkms.KeyType{nkms.AES256, nkms.RSA2048} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			s, clk := newService(t)
			k := create(t, s, alice, "enc", typ, false)
			msgs := [][]byte{[]byte("one"), {}, []byte("three")}
			v1, err := s.Encrypt(ctx, alice, k.KeyTag(), msgs, "")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v1.Values[0], "ncpkms:v1:") || len(v1.Values) != 3 {
				t.Fatalf("ciphertexts %q", v1.Values)
			}
			clk.Add(time.Second)
			if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
				t.Fatal(err)
			}
			v2, err := s.Encrypt(ctx, alice, k.KeyTag(), msgs[:1], "")
			if err != nil || !strings.HasPrefix(v2.Values[0], "ncpkms:v2:") {
				t.Fatalf("after rotation: %q %v", v2.Values, err)
			}
			got, err := s.Decrypt(ctx, alice, k.KeyTag(), append(v1.Values, v2.Values...), "")
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range append(msgs, msgs[0]) {
				if !bytes.Equal(got.Values[i], want) {
					t.Fatalf("item %d: got %q, want %q", i, got.Values[i], want)
				}
			}
			re, err := s.ReEncrypt(ctx, alice, k.KeyTag(), v1.Values, "")
			if err != nil || !strings.HasPrefix(re.Values[0], "ncpkms:v2:") {
				t.Fatalf("re-encrypt: %q %v", re.Values, err)
			}
			if _, err := s.SetVersionState(ctx, alice, k.KeyTag(), 1, nkms.StateDisable); err != nil {
				t.Fatal(err)
			}
			_, err = s.Decrypt(ctx, alice, k.KeyTag(), v1.Values[:1], "")
			wantErr(t, err, nkms.ErrInvalidStatus)
			_, err = s.ReEncrypt(ctx, alice, k.KeyTag(), v1.Values[:1], "")
			wantErr(t, err, nkms.ErrInvalidStatus)
			if got, err := s.Decrypt(ctx, alice, k.KeyTag(), re.Values[:1], ""); err != nil || string(got.Values[0]) != "one" {
				t.Fatalf("decrypt re-encrypted: %q %v", got.Values, err)
			}
			_, err = s.Decrypt(ctx, alice, k.KeyTag(), []string{"ncpkms:v9:" + strings.SplitN(v1.Values[0], ":", 3)[2]}, "")
			wantErr(t, err, nkms.ErrVersionNotFound)
		})
	}
}

func TestDecryptFailuresAreOneError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "conv", nkms.AES256, true)
	ctxA := base64.StdEncoding.EncodeToString([]byte("tenant-a"))
	ctxB := base64.StdEncoding.EncodeToString([]byte("tenant-b"))
	ct, err := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("same")}, ctxA)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("same")}, ctxA)
	if again.Values[0] != ct.Values[0] {
		t.Fatalf("convergent key is not deterministic: %q vs %q", ct.Values[0], again.Values[0])
	}
	body, _ := base64.StdEncoding.DecodeString(strings.SplitN(ct.Values[0], ":", 3)[2])
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct{ ct, context string }{
		"wrong context": {ct.Values[0], ctxB},
		"tampered":      {"ncpkms:v1:" + base64.StdEncoding.EncodeToString(tampered), ctxA},
		"truncated":     {"ncpkms:v1:" + base64.StdEncoding.EncodeToString(body[:10]), ctxA},
	} {
		_, err := s.Decrypt(ctx, alice, k.KeyTag(), []string{tc.ct}, tc.context)
		if !errors.Is(err, nkms.ErrDecrypt) || nkms.ErrorMessage(err) != nkms.ErrorMessage(nkms.ErrDecrypt) {
			t.Errorf("%s: got %v, want ErrDecrypt", name, err)
		}
	}
	_, err = s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("x")}, "")
	wantCode(t, err, nkms.Invalid) // context required for convergent keys
	_, err = s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("x")}, base64.StdEncoding.EncodeToString(make([]byte, 51)))
	wantCode(t, err, nkms.Invalid)
}

func TestEncryptLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	aes := create(t, s, alice, "aes", nkms.AES256, false)
	rsaK := create(t, s, alice, "rsa", nkms.RSA2048, false)
	ec := create(t, s, alice, "ecc", nkms.ECDSA, false)
	if _, err := s.Encrypt(ctx, alice, aes.KeyTag(), [][]byte{make([]byte, 32768)}, ""); err != nil {
		t.Fatalf("32 KiB: %v", err)
	}
	_, err := s.Encrypt(ctx, alice, aes.KeyTag(), [][]byte{make([]byte, 16384), make([]byte, 16385)}, "")
	wantCode(t, err, nkms.Invalid)
	if _, err := s.Encrypt(ctx, alice, rsaK.KeyTag(), [][]byte{make([]byte, 190)}, ""); err != nil {
		t.Fatalf("190 B RSA: %v", err)
	}
	_, err = s.Encrypt(ctx, alice, rsaK.KeyTag(), [][]byte{make([]byte, 191)}, "")
	wantCode(t, err, nkms.Invalid)
	_, err = s.Encrypt(ctx, alice, ec.KeyTag(), [][]byte{[]byte("x")}, "")
	wantCode(t, err, nkms.Invalid)
	_, err = s.Sign(ctx, alice, aes.KeyTag(), []byte("x"))
	wantCode(t, err, nkms.Invalid)
	_, err = s.Sign(ctx, alice, ec.KeyTag(), make([]byte, 8193))
	wantCode(t, err, nkms.Invalid)
	_, err = s.CreateCustomKey(ctx, alice, aes.KeyTag(), 192, false, "")
	wantCode(t, err, nkms.Invalid)
	_, err = s.Decrypt(ctx, alice, aes.KeyTag(), []string{"ncpkms:v01:AAAA"}, "")
	wantCode(t, err, nkms.Invalid)
}

func TestSignVerifyWithStandardLibrary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, typ := range []nkms.KeyType{nkms.RSA2048, nkms.ECDSA} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			s, _ := newService(t)
			k := create(t, s, alice, "signer", typ, false)
			msg := []byte("message to sign")
			sig, err := s.Sign(ctx, alice, k.KeyTag(), msg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
				t.Fatal(err)
			}
			ok, err := s.Verify(ctx, alice, k.KeyTag(), msg, sig.Value)
			if err != nil || !ok.Valid {
				t.Fatalf("verify old-version signature: %v %v", ok, err)
			}
			if ok, err := s.Verify(ctx, alice, k.KeyTag(), []byte("other"), sig.Value); err != nil || ok.Valid {
				t.Fatalf("verify other message: %v %v", ok, err)
			}
			pemText, err := s.PublicKey(ctx, alice, k.KeyTag(), 1)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode([]byte(pemText.PEM))
			if block == nil || block.Type != "PUBLIC KEY" {
				t.Fatalf("public key is not a PUBLIC KEY PEM: %q", pemText.PEM)
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig.Value, "ncpkms:v1:"))
			digest := sha256.Sum256(msg)
			switch pub := pub.(type) {
			case *rsa.PublicKey:
				err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw, &rsa.PSSOptions{SaltLength: 222, Hash: crypto.SHA256})
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(pub, digest[:], raw) {
					err = errors.New("ecdsa signature does not verify")
				}
			}
			if err != nil {
				t.Fatalf("standard library verification: %v", err)
			}
			cur, _ := s.PublicKey(ctx, alice, k.KeyTag(), 0)
			if cur == pemText {
				t.Fatal("rotation did not change the public key")
			}
			if _, err := s.SetVersionState(ctx, alice, k.KeyTag(), 1, nkms.StateDisable); err != nil {
				t.Fatal(err)
			}
			_, err = s.PublicKey(ctx, alice, k.KeyTag(), 1)
			wantErr(t, err, nkms.ErrInvalidStatus)
			_, err = s.Verify(ctx, alice, k.KeyTag(), msg, sig.Value)
			wantErr(t, err, nkms.ErrInvalidStatus)
		})
	}
}

func TestCustomKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "dek", nkms.AES256, false)
	for _, bits := range []int{0, 128, 256, 512} {
		ck, err := s.CreateCustomKey(ctx, alice, k.KeyTag(), bits, true, "")
		if err != nil {
			t.Fatal(err)
		}
		want := bits / 8
		if bits == 0 {
			want = 32
		}
		if len(ck.Plaintext) != want || ck.Version != 1 {
			t.Fatalf("bits %d: %d bytes, version %d", bits, len(ck.Plaintext), ck.Version)
		}
		got, err := s.Decrypt(ctx, alice, k.KeyTag(), []string{ck.Ciphertext}, "")
		if err != nil || !bytes.Equal(got.Values[0], ck.Plaintext) {
			t.Fatalf("decrypt custom key: %v", err)
		}
	}
	ck, _ := s.CreateCustomKey(ctx, alice, k.KeyTag(), 0, false, "")
	if ck.Plaintext != nil {
		t.Fatal("plaintext returned without requestPlainKey")
	}
}

func TestDeletionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	k := create(t, s, alice, "doomed", nkms.AES256, false)
	keep := create(t, s, alice, "kept", nkms.AES256, false)
	ct, _ := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("x")}, "")

	err := s.DeleteKey(ctx, alice, k.KeyTag())
	wantErr(t, err, nkms.ErrInvalidStatus)
	r, err := s.RequestDeletion(ctx, alice, k.KeyTag())
	if err != nil || r.State != nkms.StateRevoke || !r.DestroyDate.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("request deletion: %+v %v", r, err)
	}
	_, err = s.Decrypt(ctx, alice, k.KeyTag(), ct.Values, "")
	wantErr(t, err, nkms.ErrInvalidStatus)
	_, err = s.EnableKey(ctx, alice, k.KeyTag())
	wantErr(t, err, nkms.ErrInvalidStatus)
	if _, err := s.CancelDeletion(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestDeletion(ctx, alice, keep.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelDeletion(ctx, alice, keep.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestDeletion(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}

	clk.Add(72*time.Hour - time.Second)
	if res, err := s.RunDue(ctx); err != nil || res.Destroyed != 0 {
		t.Fatalf("before the window: %+v %v", res, err)
	}
	clk.Add(time.Second)
	res, err := s.RunDue(ctx)
	if err != nil || res.Destroyed != 1 {
		t.Fatalf("at the window: %+v %v", res, err)
	}
	if _, err := s.GetKey(ctx, alice, k.KeyTag()); !errors.Is(err, nkms.ErrKeyNotFound) {
		t.Fatalf("destroyed key: got %v, want ErrKeyNotFound", err)
	}
	if _, err := s.GetKey(ctx, alice, keep.KeyTag()); err != nil {
		t.Fatalf("cancelled key was destroyed: %v", err)
	}
	if _, err := s.CreateKey(ctx, alice, nkms.CreateKeyInput{Name: "doomed", Type: nkms.AES256}); err != nil {
		t.Fatalf("name of a destroyed key is free again: %v", err)
	}
}

func TestAutoRotationPass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	k, err := s.CreateKey(ctx, alice, nkms.CreateKeyInput{Name: "auto", Type: nkms.AES256, AutoRotation: true, RotationPeriod: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DisableKey(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	res, err := s.RunDue(ctx)
	if err != nil || res.Rotated != 1 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	got, _ := s.GetKey(ctx, alice, k.KeyTag())
	if got.Current() != 2 || !got.RotationBase.Equal(clk.Now()) {
		t.Fatalf("after auto rotation: version %d base %v", got.Current(), got.RotationBase)
	}
	if res, _ := s.RunDue(ctx); res.Rotated != 0 {
		t.Fatalf("rotated twice in one period: %+v", res)
	}
}

func TestConcurrentRotations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "busy", nkms.ECDSA, false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := s.GetKey(ctx, alice, k.KeyTag())
	if got.Current() != 9 {
		t.Fatalf("got %d versions, want 9", got.Current())
	}
	// Every version's material unseals: its sealing AD names its own version.
	for n := 1; n <= 9; n++ {
		if _, err := s.PublicKey(ctx, alice, k.KeyTag(), n); err != nil {
			t.Fatalf("version %d: %v", n, err)
		}
	}
}

func TestAccessKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	first, err := s.Bootstrap(ctx)
	if err != nil || first == nil || first.Keystore != 1 {
		t.Fatalf("bootstrap: %v %v", first, err)
	}
	if again, err := s.Bootstrap(ctx); err != nil || again != nil {
		t.Fatalf("second bootstrap created %v (%v)", again, err)
	}
	if strings.Contains(first.String(), first.SecretKey) {
		t.Fatal("Credentials.String shows the secret")
	}
	c, ok, err := signedBy(s, first.AccessKey, first.SecretKey)
	if err != nil || !ok || c.Keystore != 1 || c.Role != nkms.RoleAdmin {
		t.Fatalf("lookup: %+v %v %v", c, ok, err)
	}
	if _, ok, _ := signedBy(s, first.AccessKey, "not-the-secret-key"); ok {
		t.Fatal("a signature made with another secret is accepted")
	}
	cred, err := s.CreateAccessKey(ctx, c, 7, "")
	if err != nil || cred.Keystore != 7 || cred.Role != nkms.RoleAdmin {
		t.Fatalf("create: %v %v", cred, err)
	}
	tenant := nkms.Caller{AccessKey: cred.AccessKey, Keystore: 7, Role: nkms.RoleAdmin}
	viewer, err := s.CreateAccessKey(ctx, tenant, 7, nkms.RoleViewer)
	if err != nil || viewer.Role != nkms.RoleViewer {
		t.Fatalf("a tenant admin creates a viewer in its keystore: %v %v", viewer, err)
	}
	// A tenant admin manages only its own keystore; the operator (keystore 1) manages all.
	_, err = s.CreateAccessKey(ctx, tenant, 1, nkms.RoleAdmin)
	wantCode(t, err, nkms.PermissionDenied)
	_, err = s.CreateAccessKey(ctx, c, 7, "root")
	wantCode(t, err, nkms.Invalid)
	if l, _ := s.ListAccessKeys(ctx, tenant); len(l) != 2 {
		t.Fatalf("tenant admin lists %d access keys, want its 2", len(l))
	}
	if l, _ := s.ListAccessKeys(ctx, c); len(l) != 3 {
		t.Fatalf("operator lists %d access keys, want 3", len(l))
	}
	err = s.RevokeAccessKey(ctx, tenant, first.AccessKey)
	wantErr(t, err, nkms.ErrAccessKeyNotFound)
	err = s.RevokeAccessKey(ctx, tenant, tenant.AccessKey)
	wantCode(t, err, nkms.Invalid)
	if err := s.RevokeAccessKey(ctx, tenant, viewer.AccessKey); err != nil {
		t.Fatal(err)
	}
	if _, _, err := signedBy(s, viewer.AccessKey, viewer.SecretKey); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
		t.Fatalf("revoked access key still resolves: %v", err)
	}
	if err := s.EnsureAccessKey(ctx, "CIKEY", "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := signedBy(s, "CIKEY", "0123456789abcdef"); !ok {
		t.Fatal("EnsureAccessKey's secret is refused")
	}
	if err := s.EnsureAccessKey(ctx, "CIKEY", "fedcba9876543210"); err != nil {
		t.Fatal(err)
	}
	// The old secret was verified (and its MAC kept) above: it must stop working at once.
	if _, ok, _ := signedBy(s, "CIKEY", "0123456789abcdef"); ok {
		t.Fatal("the replaced secret still signs")
	}
	if _, ok, _ := signedBy(s, "CIKEY", "fedcba9876543210"); !ok {
		t.Fatal("EnsureAccessKey did not replace the secret")
	}
	_, _, err = signedBy(s, "nobody", "0123456789abcdef")
	if !errors.Is(err, nkms.ErrAccessKeyNotFound) {
		t.Fatalf("unknown access key: %v", err)
	}
}

// signedBy authenticates a request signed by access key id with secret.
func signedBy(s *nkms.Service, id, secret string) (nkms.Caller, bool, error) {
	const method, uri, ts = "POST", "/kms/v1/keys/x/encrypt", "1700000000000"
	sig := sigv2.Sign([]byte(secret), method, uri, ts, id)
	return s.AuthenticateAccessKey(context.Background(), id, func(mac hash.Hash) bool {
		return sigv2.VerifyMAC(mac, method, uri, sigv2.Credentials{Timestamp: ts, AccessKey: id, Signature: sig})
	})
}

// TestConcurrentRotationsAllLand: many rotations of one key at once each add
// a version (found by the crash-loop test: past 24 concurrent rotations some
// answered 500 after their retries ran out).
func TestConcurrentRotationsAllLand(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	s.Store = slowGets{s.Store} // widen the window between reading the version and writing the next
	k := create(t, s, alice, "spun", nkms.AES256, false)
	const n = 48
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Rotate(context.Background(), alice, k.KeyTag())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent rotation: %v", err)
		}
	}
	got, err := s.GetKey(context.Background(), alice, k.KeyTag())
	if err != nil || got.Current() != n+1 {
		t.Fatalf("after %d rotations the key has %d versions (%v), want %d", n, got.Current(), err, n+1)
	}
}

// slowGets is a store whose reads take a little while.
type slowGets struct{ nkms.Store }

func (s slowGets) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	k, err := s.Store.Get(ctx, tag)
	time.Sleep(200 * time.Microsecond) // what was read grows old
	return k, err
}
