package kubekms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/kubekms"
	"github.com/nkms/nkms/nkmstest"
)

// dek is a data key as kube-apiserver sends one: 32 random bytes.
func dek(t testing.TB) []byte {
	t.Helper()
	p := make([]byte, 32)
	rand.Read(p)
	return p
}

// TestRoundTrip: over the socket, Status is ok with key_id "<tag>:v1",
// Encrypt gives the nkms ciphertext's bytes and that key_id, and Decrypt
// gives the data key back.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	pl := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})

	st := pl.status(t)
	if st.Healthz != "ok" || st.KeyId != key.KeyTag+":v1" {
		t.Fatalf("Status = healthz %q key_id %q, want ok and %s:v1", st.Healthz, st.KeyId, key.KeyTag)
	}
	d := dek(t)
	enc := pl.encrypt(t, d)
	if enc.KeyId != key.KeyTag+":v1" || !bytes.HasPrefix(enc.Ciphertext, []byte("ncpkms:v1:")) || len(enc.Annotations) != 0 {
		t.Fatalf("Encrypt = key_id %q ciphertext %.12q… annotations %v, want %s:v1, ncpkms:v1:…, none", enc.KeyId, enc.Ciphertext, enc.Annotations, key.KeyTag)
	}
	// The ciphertext is nkms's own: the client decrypts it without the plugin.
	if got, err := srv.Client().Decrypt(context.Background(), key.KeyTag, string(enc.Ciphertext), nil); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("client Decrypt of the plugin's ciphertext = %x, %v; want %x", got, err, d)
	}
	if got := pl.decrypt(t, enc); !bytes.Equal(got, d) {
		t.Fatalf("Decrypt = %x, want %x", got, d)
	}
}

// TestRotation: after the key rotates, Status and Encrypt report the new
// key_id (kube-apiserver makes a new DEK when it changes), and data keys
// wrapped before the rotation still decrypt.
func TestRotation(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	pl := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	ctx := context.Background()

	if st := pl.status(t); st.KeyId != key.KeyTag+":v1" {
		t.Fatalf("Status key_id = %q, want %s:v1", st.KeyId, key.KeyTag)
	}
	d1 := dek(t)
	old := pl.encrypt(t, d1)

	if _, err := srv.Client().Rotate(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	// Within the probe's TTL Status still reports v1 from its cache ...
	if st := pl.status(t); st.KeyId != key.KeyTag+":v1" {
		t.Fatalf("Status key_id within the TTL = %q, want the cached %s:v1", st.KeyId, key.KeyTag)
	}
	// ... until an Encrypt sees the new version, which drops the cache, so
	// that Status and Encrypt agree (kube-apiserver checks that they do).
	d2 := dek(t)
	enc := pl.encrypt(t, d2)
	if enc.KeyId != key.KeyTag+":v2" || !bytes.HasPrefix(enc.Ciphertext, []byte("ncpkms:v2:")) {
		t.Fatalf("Encrypt after rotation = key_id %q ciphertext %.10q…, want %s:v2", enc.KeyId, enc.Ciphertext, key.KeyTag)
	}
	if st := pl.status(t); st.Healthz != "ok" || st.KeyId != key.KeyTag+":v2" {
		t.Fatalf("Status after rotation = %q %q, want ok %s:v2", st.Healthz, st.KeyId, key.KeyTag)
	}
	if got := pl.decrypt(t, old); !bytes.Equal(got, d1) {
		t.Fatalf("Decrypt of a v1 ciphertext after rotation = %x, want %x", got, d1)
	}
	if got := pl.decrypt(t, enc); !bytes.Equal(got, d2) {
		t.Fatalf("Decrypt of the v2 ciphertext = %x, want %x", got, d2)
	}

	// A rotation with no Encrypt in between shows in Status once the
	// probe's TTL has passed.
	if _, err := srv.Client().Rotate(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	pl.clock.Add(kubekms.DefaultProbeTTL)
	if st := pl.status(t); st.KeyId != key.KeyTag+":v3" {
		t.Fatalf("Status key_id after the TTL = %q, want %s:v3", st.KeyId, key.KeyTag)
	}
}

// TestDisabledKey: a disabled key makes Status unhealthy with a reason and
// no key_id, and Encrypt and Decrypt fail with FailedPrecondition; enabling
// it again makes the plugin healthy.
func TestDisabledKey(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	pl := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	ctx := context.Background()
	enc := pl.encrypt(t, dek(t))
	pl.status(t)

	if _, err := srv.Client().DisableKey(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	pl.clock.Add(kubekms.DefaultProbeTTL)
	st := pl.status(t)
	if st.Healthz == "ok" || st.KeyId != "" || !strings.Contains(st.Healthz, "not enabled") {
		t.Fatalf("Status of a disabled key = healthz %q key_id %q, want a reason with \"not enabled\" and no key_id", st.Healthz, st.KeyId)
	}
	_, err := pl.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek(t), Uid: "u"})
	wantCode(t, "Encrypt with a disabled key", err, codes.FailedPrecondition)
	_, err = pl.kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "u"})
	wantCode(t, "Decrypt with a disabled key", err, codes.FailedPrecondition)

	if _, err := srv.Client().EnableKey(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	// A failed probe is cached for a second at most.
	pl.clock.Add(time.Second)
	if st := pl.status(t); st.Healthz != "ok" || st.KeyId != key.KeyTag+":v1" {
		t.Fatalf("Status after enabling = %q %q, want ok", st.Healthz, st.KeyId)
	}
}

// TestWrongCredentials: credentials the KMS refuses give an unhealthy
// Status that says so, and Unauthenticated from Encrypt and Decrypt; a key
// the credentials cannot see gives NotFound.
func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	good := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	enc := good.encrypt(t, dek(t))

	wrongSecret := "not-the-secret-" + rand.Text()
	pl := startPlugin(t, kubekms.Config{KMS: srv.NewClient(srv.AccessKey, wrongSecret), KeyTag: key.KeyTag})
	st := pl.status(t)
	if st.Healthz == "ok" || st.KeyId != "" || !strings.Contains(st.Healthz, "refused the plugin's credentials") {
		t.Fatalf("Status with a wrong secret = %q %q, want a reason about the credentials", st.Healthz, st.KeyId)
	}
	ctx := context.Background()
	_, err := pl.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek(t), Uid: "u"})
	wantCode(t, "Encrypt with a wrong secret", err, codes.Unauthenticated)
	_, err = pl.kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "u"})
	wantCode(t, "Decrypt with a wrong secret", err, codes.Unauthenticated)
	if logs := pl.logs.String(); strings.Contains(logs, wrongSecret) || strings.Contains(logs, srv.SecretKey) {
		t.Errorf("the plugin's logs hold a secret key:\n%s", logs)
	}

	missing := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: strings.Repeat("ab", 32)})
	if st := missing.status(t); st.Healthz == "ok" || !strings.Contains(st.Healthz, "no such key") {
		t.Fatalf("Status of an unknown key = %q, want a reason with \"no such key\"", st.Healthz)
	}
	_, err = missing.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek(t), Uid: "u"})
	wantCode(t, "Encrypt with an unknown key", err, codes.NotFound)
}

// TestAccessToken: a plugin that authenticates with a key's access token
// (NKMS_ACCESS_TOKEN) instead of an access key works the same.
func TestAccessToken(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	ctx := context.Background()
	if err := srv.Client().CreateTokenGenerator(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	set, err := srv.Client().CreateTokenSet(ctx, key.KeyTag, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewWithToken(srv.URL, set.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	pl := startPlugin(t, kubekms.Config{KMS: tc, KeyTag: key.KeyTag})
	if st := pl.status(t); st.Healthz != "ok" {
		t.Fatalf("Status with an access token = %q, want ok", st.Healthz)
	}
	d := dek(t)
	if got := pl.decrypt(t, pl.encrypt(t, d)); !bytes.Equal(got, d) {
		t.Fatalf("Decrypt = %x, want %x", got, d)
	}
	if strings.Contains(pl.logs.String(), set.AccessToken) {
		t.Errorf("the plugin's logs hold the access token")
	}
}

// TestUnansweringKMS: a KMS that accepts connections and never answers
// makes Encrypt fail with DeadlineExceeded (the plugin's Timeout, not
// kube-apiserver's deadline, ends it) and Status say why.
func TestUnansweringKMS(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(held)
		for c := range held {
			c.Close()
		}
	})
	kms, err := client.New("http://"+ln.Addr().String(), "AK", "SK")
	if err != nil {
		t.Fatal(err)
	}
	pl := startPlugin(t, kubekms.Config{KMS: kms, KeyTag: "tag", Timeout: 200 * time.Millisecond})
	// kube-apiserver's deadline (its EncryptionConfiguration timeout) is longer.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = pl.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: dek(t), Uid: "u"})
	st := wantCode(t, "Encrypt with a KMS that does not answer", err, codes.DeadlineExceeded)
	if !strings.Contains(st.Message(), "did not answer in time") {
		t.Errorf("Encrypt error = %q, want it to say the KMS did not answer in time", st.Message())
	}
	if s := pl.status(t); s.Healthz == "ok" || !strings.Contains(s.Healthz, "did not answer in time") {
		t.Fatalf("Status = %q, want a reason with \"did not answer in time\"", s.Healthz)
	}
}

// TestDecryptRefusesBadInput: a key_id or ciphertext the plugin did not
// make is refused with InvalidArgument, and a key_id of another key with
// FailedPrecondition, before anything is sent to the KMS.
func TestDecryptRefusesBadInput(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	pl := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	enc := pl.encrypt(t, dek(t))
	body := strings.TrimPrefix(string(enc.Ciphertext), "ncpkms:v1:")
	tampered := []byte(string(enc.Ciphertext[:len(enc.Ciphertext)-4]) + "AAA=")
	for _, tc := range []struct {
		name       string
		keyID      string
		ciphertext []byte
		code       codes.Code
	}{
		{"empty key_id", "", enc.Ciphertext, codes.InvalidArgument},
		{"key_id without version", key.KeyTag, enc.Ciphertext, codes.InvalidArgument},
		{"key_id of another key", strings.Repeat("cd", 32) + ":v1", enc.Ciphertext, codes.FailedPrecondition},
		{"versions differ", key.KeyTag + ":v2", enc.Ciphertext, codes.InvalidArgument},
		{"not an nkms ciphertext", key.KeyTag + ":v1", []byte(body), codes.InvalidArgument},
		{"empty ciphertext", key.KeyTag + ":v1", nil, codes.InvalidArgument},
		{"tampered ciphertext", key.KeyTag + ":v1", tampered, codes.InvalidArgument},
	} {
		_, err := pl.kms.Decrypt(context.Background(), &kmsapi.DecryptRequest{Ciphertext: tc.ciphertext, KeyId: tc.keyID, Uid: "u"})
		wantCode(t, tc.name, err, tc.code)
	}
	_, err := pl.kms.Encrypt(context.Background(), &kmsapi.EncryptRequest{Uid: "u"})
	wantCode(t, "Encrypt of nothing", err, codes.InvalidArgument)
}

// TestLogsHoldNoData: after calls that succeed and fail, the plugin's log
// holds no plaintext, ciphertext or secret.
func TestLogsHoldNoData(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	pl := startPlugin(t, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	d := dek(t)
	enc := pl.encrypt(t, d)
	pl.decrypt(t, enc)
	pl.status(t)
	if _, err := srv.Client().DisableKey(context.Background(), key.KeyTag); err != nil {
		t.Fatal(err)
	}
	pl.clock.Add(kubekms.DefaultProbeTTL)
	pl.status(t)
	pl.kms.Encrypt(context.Background(), &kmsapi.EncryptRequest{Plaintext: d, Uid: "u"})
	pl.kms.Decrypt(context.Background(), &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "u"})

	logs := pl.logs.String()
	if !strings.Contains(logs, "kms plugin unhealthy") || !strings.Contains(logs, "kms plugin call failed") {
		t.Fatalf("the plugin logged neither the unhealthy status nor the failed calls:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"plaintext (hex)":    hex.EncodeToString(d),
		"plaintext (Base64)": base64.StdEncoding.EncodeToString(d),
		"ciphertext":         string(enc.Ciphertext),
		"secret key":         srv.SecretKey,
	} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("the plugin's logs hold the %s:\n%s", name, logs)
		}
	}
	if bytes.Contains([]byte(logs), d) {
		t.Errorf("the plugin's logs hold the plaintext's bytes")
	}
}
