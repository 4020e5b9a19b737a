package nkms_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/client/kmsv3"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

var hsmT0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// hsmEnv is a Service over HTTP with an optional HSM, and signed 2.0 and
// 3.0 clients of its operator.
type hsmEnv struct {
	svc *nkms.Service
	clk *testkit.Clock
	v2  *client.Client
	v3  *kmsv3.Client
	tok *hsm.Token // nil without an HSM
}

func newHSMEnv(t *testing.T, withHSM, emulate bool) *hsmEnv {
	t.Helper()
	e := &hsmEnv{clk: testkit.NewClock(hsmT0)}
	e.svc = &nkms.Service{Store: mem.New(), Root: testkit.RootKey(t), Now: e.clk.Now,
		DeletionWindow: nkms.DefaultDeletionWindow, HSMEmulate: emulate}
	if withHSM {
		e.tok = hsmtest.Open(t)
		e.svc.HSM = e.tok
	}
	srv := httptest.NewServer(api.New(e.svc, api.Config{PublicURL: "https://kms.example"}))
	t.Cleanup(srv.Close)
	creds, err := e.svc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e.v2, err = client.New(srv.URL, creds.AccessKey, creds.SecretKey, client.WithClock(e.clk.Now)); err != nil {
		t.Fatal(err)
	}
	if e.v3, err = kmsv3.New(srv.URL, creds.AccessKey, creds.SecretKey, kmsv3.WithClock(e.clk.Now)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *hsmEnv) objects(t *testing.T) []hsm.Object {
	t.Helper()
	objs, err := e.tok.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// rotate rotates the one-version key tag and checks that the token then
// holds two objects (or pairs), that new ciphertexts are version 2, and
// that they and ct1 (version 1) decrypt.
func (e *hsmEnv) rotate(t *testing.T, tag, ct1 string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.v2.Rotate(ctx, tag); err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects(t)); n != 2 {
		t.Fatalf("token objects after a rotation: %d, want 2", n)
	}
	ct2, err := e.v2.Encrypt(ctx, tag, []byte("v2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ncpBody(t, ct2); v != 2 {
		t.Fatalf("after rotation: encrypted with v%d, want v2", v)
	}
	for _, ct := range []string{ct1, ct2} {
		if _, err := e.v2.Decrypt(ctx, tag, ct, nil); err != nil {
			t.Fatalf("decrypt %.12s after rotation: %v", ct, err)
		}
	}
}

func wantV2Invalid(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != "INVALID_REQUEST" {
		t.Fatalf("%s: got %v, want 400 INVALID_REQUEST", what, err)
	}
}

// TestCommonHSMRefusedWithoutHSM: no silent downgrade. Without an HSM a
// COMMON_HSM key is refused on 2.0 (400 INVALID_REQUEST, naming the reason)
// and on 3.0 (400 InvalidParameter); with the emulation setting
// (--hsm-emulate-software, --dev) it is accepted and works, and StartHSM
// counts it as kept in software.
func TestCommonHSMRefusedWithoutHSM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newHSMEnv(t, false, false)
	_, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-key", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	wantV2Invalid(t, "2.0 create COMMON_HSM without an HSM", err)
	if !strings.Contains(err.Error(), "COMMON_HSM keys need an HSM") {
		t.Errorf("2.0 refusal: got %q, want it to say that COMMON_HSM keys need an HSM", err)
	}
	_, err = e.v3.CreateKey(ctx, kmsv3.CreateKeyRequest{KeyName: "hsm-key", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	var ve *kmsv3.Error
	if !errors.As(err, &ve) || ve.Status != 400 || ve.ErrorCode != "InvalidParameter" {
		t.Fatalf("3.0 create COMMON_HSM: got %v, want 400 InvalidParameter", err)
	}
	if k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "basic", KeyType: "AES256"}); err != nil || k.KeyTag == "" {
		t.Fatalf("BASIC is still accepted: %v", err)
	}

	e.svc.HSMEmulate = true
	k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "emulated", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatalf("COMMON_HSM with emulation: %v", err)
	}
	ct, err := e.v2.Encrypt(ctx, k.KeyTag, []byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := e.v2.Decrypt(ctx, k.KeyTag, ct, nil); err != nil || string(pt) != "hi" {
		t.Fatalf("emulated COMMON_HSM round trip: %q, %v", pt, err)
	}
	r, err := e.svc.StartHSM(ctx)
	if err != nil || r.SoftwareKeys != 1 || r.TokenVersions != 0 {
		t.Fatalf("StartHSM: got %+v, %v; want 1 software key, no token versions", r, err)
	}
}

func parsePEM(t *testing.T, p string) any {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("not PEM: %q", p)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func ncpBody(t *testing.T, s string) (int, []byte) {
	t.Helper()
	v, body, err := crypto.ParseCiphertext(s)
	if err != nil {
		t.Fatalf("%q is not an ncpkms value: %v", s, err)
	}
	return v, body
}

// TestHSMKeysThroughHTTP: COMMON_HSM keys on a server with a SoftHSM2
// token, through signed HTTP requests. AES256: encrypt and decrypt round
// trip in the ncpkms:v<N>: format with the software layout (12-byte nonce,
// 16-byte tag); a tampered ciphertext answers exactly as for a BASIC key;
// rotation makes a second token object and old ciphertexts still decrypt.
// ECDSA: the token's signature verifies with the public key the API
// returns (ecdsa.VerifyASN1) and through Verify. Convergent AES256: equal
// plaintext and context give equal ciphertexts, another context does not
// decrypt. A create refused for its name leaves no token object.
// Destroying the key deletes its token objects. (RSA2048, and the refusal
// of a key type the token cannot keep: hsm_rsa_http_test.go.)
func TestHSMKeysThroughHTTP(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)

	k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-aes", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects(t)); n != 1 {
		t.Fatalf("token objects after creating an AES256 key: %d, want 1", n)
	}
	ct1, err := e.v2.Encrypt(ctx, k.KeyTag, []byte("top secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, body := ncpBody(t, ct1); v != 1 || len(body) != 12+len("top secret")+16 {
		t.Fatalf("ciphertext %q: version %d, body %d bytes; want v1 and 12+10+16", ct1, v, len(body))
	}
	if pt, err := e.v2.Decrypt(ctx, k.KeyTag, ct1, nil); err != nil || string(pt) != "top secret" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}
	basic, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "basic-aes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	basicCT, _ := e.v2.Encrypt(ctx, basic.KeyTag, []byte("top secret"), nil)
	tamper := func(s string) string {
		v, body := ncpBody(t, s)
		body[len(body)-1] ^= 1
		return crypto.FormatCiphertext(v, body)
	}
	_, hsmErr := e.v2.Decrypt(ctx, k.KeyTag, tamper(ct1), nil)
	_, basicErr := e.v2.Decrypt(ctx, basic.KeyTag, tamper(basicCT), nil)
	wantV2Invalid(t, "tampered COMMON_HSM ciphertext", hsmErr)
	if hsmErr.Error() != basicErr.Error() {
		t.Errorf("tampered ciphertext: COMMON_HSM answers %q, BASIC %q; want the same", hsmErr, basicErr)
	}

	e.rotate(t, k.KeyTag, ct1)

	ek, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-ec", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("signed by the token")
	sig, err := e.v2.Sign(ctx, ek.KeyTag, msg)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := e.v2.PublicKey(ctx, ek.KeyTag, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, der := ncpBody(t, sig)
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(parsePEM(t, pemKey).(*ecdsa.PublicKey), digest[:], der) {
		t.Errorf("the token's ECDSA signature does not verify with the API's public key")
	}
	if ok, err := e.v2.Verify(ctx, ek.KeyTag, msg, sig); !ok || err != nil {
		t.Errorf("Verify of the token's signature: %v, %v", ok, err)
	}
	if ok, err := e.v2.Verify(ctx, ek.KeyTag, []byte("other"), sig); ok || err != nil {
		t.Errorf("Verify of another message: %v, %v; want false", ok, err)
	}

	// Convergent: the nonce is the token's HMAC of context and plaintext.
	ck, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-conv", KeyType: "AES256", ProtectionType: "COMMON_HSM", IsConvergent: true})
	if err != nil {
		t.Fatal(err)
	}
	ctxA, ctxB := []byte("context A"), []byte("context B")
	c1, err := e.v2.Encrypt(ctx, ck.KeyTag, []byte("same"), ctxA)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := e.v2.Encrypt(ctx, ck.KeyTag, []byte("same"), ctxA)
	c3, _ := e.v2.Encrypt(ctx, ck.KeyTag, []byte("same"), ctxB)
	if c1 != c2 || c1 == c3 {
		t.Fatalf("convergent COMMON_HSM: equal inputs gave %q and %q, another context %q; want equal, then different", c1, c2, c3)
	}
	if pt, err := e.v2.Decrypt(ctx, ck.KeyTag, c1, ctxA); err != nil || string(pt) != "same" {
		t.Fatalf("convergent COMMON_HSM decrypt: %q, %v", pt, err)
	}
	_, err = e.v2.Decrypt(ctx, ck.KeyTag, c1, ctxB)
	wantV2Invalid(t, "convergent COMMON_HSM decrypt with another context", err)
	// A name conflict after the token object was made: the object goes again.
	before := len(e.objects(t))
	_, err = e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "hsm-ec", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 409 {
		t.Fatalf("COMMON_HSM create with a taken name: got %v, want 409", err)
	}
	if n := len(e.objects(t)); n != before {
		t.Fatalf("a create refused for its name left %d token objects, want %d", n, before)
	}
	for _, tag := range []string{k.KeyTag, ck.KeyTag} { // two versions; a convergent key's two objects
		if _, err := e.v2.RequestDeletion(ctx, tag); err != nil {
			t.Fatal(err)
		}
		if err := e.v2.DeleteKey(ctx, tag); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range e.objects(t) {
		if strings.Contains(o.Label, k.KeyTag) || strings.Contains(o.Label, ck.KeyTag) {
			t.Errorf("object %q of a destroyed key is still in the token", o.Label)
		}
	}
	if n := len(e.objects(t)); n != 1 {
		t.Errorf("token objects after destroying the AES keys: %d, want 1 (the ECDSA key's)", n)
	}
	if _, err := e.v2.Decrypt(ctx, k.KeyTag, ct1, nil); err == nil {
		t.Errorf("decrypt with a destroyed key succeeded")
	}
}

// TestHSMSweep: a crash between removing a key from the store and deleting
// its token objects leaves orphans; the start-up sweep (StartHSM) deletes
// those older than the grace period — and the leftover of a version that
// was never stored — but keeps every object a key refers to, and young
// orphans (a create in progress on another node).
func TestHSMSweep(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)
	live, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "live", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "dead", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the key leaves the store, its object stays.
	if err := e.svc.Store.Delete(ctx, dead.KeyTag, func(*nkms.Key) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A version that was never stored (a rotation that lost its race).
	if err := e.tok.Generate(crypto.AES256, false, []byte("unstored-version-id1"), hsm.LabelPrefix+live.KeyTag+":v2:"+
		ms(hsmT0.UnixMilli())); err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects(t)); n != 3 {
		t.Fatalf("objects before the sweep: %d, want 3", n)
	}
	if r, err := e.svc.StartHSM(ctx); err != nil || r.Swept != 0 || r.TokenVersions != 1 {
		t.Fatalf("StartHSM within the grace period: %+v, %v; want nothing swept, 1 token version", r, err)
	}
	e.clk.Add(2 * time.Hour)
	young := hsm.LabelPrefix + "feedface:v1:" + ms(e.clk.Now().UnixMilli())
	if err := e.tok.Generate(crypto.AES256, false, []byte("young-orphan-id-0001"), young); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.StartHSM(ctx)
	if err != nil || r.Swept != 2 {
		t.Fatalf("StartHSM after the grace period: %+v, %v; want 2 swept", r, err)
	}
	var labels []string
	for _, o := range e.objects(t) {
		labels = append(labels, o.Label)
	}
	if len(labels) != 2 || !strings.Contains(strings.Join(labels, " "), live.KeyTag+":v1:") || !strings.Contains(strings.Join(labels, " "), young) {
		t.Fatalf("objects after the sweep: %q; want the live key's v1 and the young orphan", labels)
	}
	if _, err := e.v2.Sign(ctx, live.KeyTag, []byte("still here")); err != nil {
		t.Fatalf("the live key after the sweep: %v", err)
	}
}

// TestHSMVersionsNeedTheHSM: a store whose keys have versions in an HSM
// does not start without one (StartHSM refuses, naming the flags), and a
// version in the token is never used as software material.
func TestHSMVersionsNeedTheHSM(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)
	k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "in-token", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	noHSM := &nkms.Service{Store: e.svc.Store, Root: e.svc.Root, Now: e.clk.Now, DeletionWindow: nkms.DefaultDeletionWindow}
	if _, err := noHSM.StartHSM(ctx); err == nil || !strings.Contains(err.Error(), "--hsm-module") {
		t.Fatalf("StartHSM without the HSM: got %v, want a refusal naming --hsm-module", err)
	}
	tag, _ := nkms.ParseTag(k.KeyTag)
	caller := nkms.Caller{AccessKey: "x", Keystore: 1, Role: nkms.RoleAdmin}
	if _, err := noHSM.Encrypt(ctx, caller, tag, [][]byte{[]byte("x")}, ""); nkms.ErrorCode(err) != nkms.Internal {
		t.Fatalf("encrypt with a token version on a server without the HSM: got %v, want Internal", err)
	}
}

func ms(n int64) string { return strconv.FormatInt(n, 10) }

// TestHSMSeedAndExport: a declared COMMON_HSM key on a server with an HSM
// is generated in the token (its object appears, its store record holds a
// reference only) and works; applied again, the seed changes nothing and
// makes no object; declared material for it is refused, as is a declared
// COMMON_HSM key without an HSM or emulation; an export with material
// leaves the token key out and says why.
func TestHSMSeedAndExport(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)
	sd := nkms.Seed{Keys: []nkms.SeedKey{{Keystore: 1, Name: "declared", Type: nkms.AES256, Protection: nkms.ProtectionCommonHSM, Convergent: true}}}
	rep, err := e.svc.ApplySeed(ctx, sd)
	if err != nil {
		t.Fatalf("seed with a COMMON_HSM key on a server with an HSM: %v", err)
	}
	tag := rep.Results[0].Tag.String()
	objs := e.objects(t)
	if len(objs) != 2 || !strings.HasPrefix(objs[0].Label, "nkms:"+tag+":v1:") {
		t.Fatalf("token objects after the seed: %+v, want the AES key and the nonce key of %s v1", objs, tag)
	}
	ct, err := e.v2.Encrypt(ctx, tag, []byte("declared in a seed"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := e.v2.Decrypt(ctx, tag, ct, []byte("ctx")); err != nil || string(pt) != "declared in a seed" {
		t.Fatalf("decrypt with the seeded token key: %q, %v", pt, err)
	}
	if rep, err := e.svc.ApplySeed(ctx, sd); err != nil || rep.Count(nkms.SeedPresent) != 1 || len(e.objects(t)) != 2 {
		t.Fatalf("the seed again: %+v, %v, %d objects; want it present and no new object", rep, err, len(e.objects(t)))
	}

	// The first declaration's object is made, then the second is refused:
	// nothing is applied and the object is deleted again.
	withMaterial := nkms.Seed{Keys: []nkms.SeedKey{
		{Keystore: 1, Name: "fresh", Type: nkms.ECDSA, Protection: nkms.ProtectionCommonHSM},
		{Keystore: 1, Name: "imported", Type: nkms.AES256, Protection: nkms.ProtectionCommonHSM, Material: [][]byte{make([]byte, 32)}},
	}}
	if _, err := e.svc.ApplySeed(ctx, withMaterial); nkms.ErrorCode(err) != nkms.Invalid || !strings.Contains(err.Error(), "never imported") {
		t.Fatalf("seed with material for a COMMON_HSM key: got %v, want Invalid", err)
	}
	if n := len(e.objects(t)); n != 2 {
		t.Fatalf("%d token objects after a refused seed, want the 2 of the first seed (the refused seed's object deleted)", n)
	}

	e.svc.AllowMaterialExport = true
	caller := nkms.Caller{AccessKey: "operator", Keystore: 1, Role: nkms.RoleAdmin}
	if _, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "software", KeyType: "AES256"}); err != nil {
		t.Fatal(err)
	}
	x, err := e.svc.ExportSeed(ctx, caller, true)
	if err != nil {
		t.Fatalf("export with material: %v", err)
	}
	if len(x.Keys) != 1 || x.Keys[0].Name != "software" || len(x.Skipped) != 1 ||
		!strings.Contains(x.Skipped[0], tag) || !strings.Contains(x.Skipped[0], "kept in an HSM") {
		t.Fatalf("export with material: keys %+v, skipped %q; want the BASIC key, and the token key left out naming the HSM", x.Keys, x.Skipped)
	}
	if x, err := e.svc.ExportSeed(ctx, caller, false); err != nil || len(x.Keys) != 2 {
		t.Fatalf("export without material: %v, %+v; want both keys declared", err, x)
	}

	none := newHSMEnv(t, false, false)
	if _, err := none.svc.ApplySeed(ctx, sd); nkms.ErrorCode(err) != nkms.Invalid || !strings.Contains(err.Error(), "need an HSM") {
		t.Fatalf("seed with a COMMON_HSM key without an HSM: got %v, want Invalid", err)
	}
	emu := newHSMEnv(t, false, true)
	if _, err := emu.svc.ApplySeed(ctx, sd); err != nil {
		t.Fatalf("seed with a COMMON_HSM key under emulation: %v", err)
	}
}
