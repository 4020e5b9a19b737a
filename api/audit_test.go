package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// auditEnv is a server over a mem store that writes an audit log to a temp file.
func auditEnv(t *testing.T, failClosed bool) (*env, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := newEnvWith(t, func(c *api.Config) { c.Audit, c.AuditFailClosed = l, failClosed })
	return e, path
}

// auditRecords verifies the chain of the log at path and returns its records.
func auditRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := audit.Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	var recs []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != n {
		t.Fatalf("Verify counted %d lines, the file has %d", n, len(recs))
	}
	return recs
}

// TestAuditOneLinePerRequest drives requests that end in every layer of the
// server and checks each one's line.
func TestAuditOneLinePerRequest(t *testing.T) {
	t.Parallel()
	e, path := auditEnv(t, false)
	ctx := context.Background()
	c := e.client(1)
	ak1, ak2 := e.creds[1].AccessKey, e.creds[2].AccessKey

	aes, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "aud-aes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, aes.KeyTag, []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(ctx, aes.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, aes.KeyTag, ct, nil); err != nil { // v1, the rotated key's old version
		t.Fatal(err)
	}
	if _, err := c.ReEncrypt(ctx, aes.KeyTag, ct, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCustomKey(ctx, aes.KeyTag, client.CustomKeyRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableVersion(ctx, aes.KeyTag, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, aes.KeyTag, ct, nil); err == nil {
		t.Fatal("decrypt with a disabled version succeeded")
	}
	ec, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "aud-ec", KeyType: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := c.Sign(ctx, ec.KeyTag, []byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, ec.KeyTag, []byte("msg"), sig); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client(2).GetKey(ctx, aes.KeyTag); err == nil { // another keystore's key
		t.Fatal("keystore 2 sees keystore 1's key")
	}
	e.rawWith("GET", "/kms/v1/keys", "", func(r *http.Request) { // wrong signature
		sigv2.SignRequest(r, ak1, []byte("wrong secret"), e.clk.Now())
	})
	e.raw("GET", "/kms/v1/nope", "")
	e.raw("PUT", "/kms/v1/keys", "")
	e.raw("POST", "/kms/v1/keys/"+aes.KeyTag+"/encrypt", `{"plaintext":"`+strings.Repeat("A", 300<<10)+`"}`)
	e.rawWith("GET", "/healthz", "", nil)
	e.rawWith("POST", "/keys/v1/"+aes.KeyTag+"/encrypt", `{"plaintext":"aGk="}`, func(r *http.Request) {
		sigv2.SignRequest(r, ak1, []byte(e.creds[1].SecretKey), e.clk.Now())
	})

	type line struct {
		AccessKey string
		Keystore  int64
		Route     string
		KeyTag    string
		Version   int
		Status    int
		Code      string
	}
	const k = "/kms/v1/keys/{keyTag}"
	want := []line{
		{ak1, 1, "POST /kms/v1/keys", aes.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/encrypt", aes.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/rotate", aes.KeyTag, 2, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/decrypt", aes.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/re-encrypt", aes.KeyTag, 2, 200, "SUCCESS"}, // the version it encrypted with
		{ak1, 1, "POST " + k + "/create-custom-key", aes.KeyTag, 2, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/versions/{version}/disable", aes.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/decrypt", aes.KeyTag, 1, 422, "UNPROCESSABLE_ENTITY"},
		{ak1, 1, "POST /kms/v1/keys", ec.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/sign", ec.KeyTag, 1, 200, "SUCCESS"},
		{ak1, 1, "POST " + k + "/verify", ec.KeyTag, 1, 200, "SUCCESS"},
		{ak2, 2, "GET " + k, aes.KeyTag, 0, 404, "NOT_FOUND"},
		{"", 0, "GET /kms/v1/keys", "", 0, 401, "200"},
		{"", 0, "GET /kms/v1/nope", "", 0, 404, "300"},
		{"", 0, "PUT /kms/v1/keys", "", 0, 405, "100"},
		{ak1, 1, "POST " + k + "/encrypt", aes.KeyTag, 0, 413, "430"},
		{"", 0, "GET /healthz", "", 0, 200, "SUCCESS"},
		{ak1, 1, "POST /keys/v1/{keyTag}/encrypt", aes.KeyTag, 2, 200, "SUCCESS"},
	}
	recs := auditRecords(t, path)
	var got []line
	ids := map[string]bool{}
	for _, r := range recs {
		got = append(got, line{r.AccessKey, r.Keystore, r.Route, r.KeyTag, r.Version, r.Status, r.Code})
		if r.ClientIP != "127.0.0.1" || !r.Time.Equal(t0) || len(r.RequestID) != 24 || ids[r.RequestID] {
			t.Errorf("line %d: clientIp %q, time %v, requestId %q", r.Seq, r.ClientIP, r.Time, r.RequestID)
		}
		ids[r.RequestID] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit lines (-want +got):\n%s", diff)
	}
}

// TestAuditNeverHoldsSecrets drives encrypt, decrypt, sign, custom key and
// token requests through a server with an audit log, and greps the log for
// every plaintext, ciphertext, signature, token and secret they carried.
func TestAuditNeverHoldsSecrets(t *testing.T) {
	t.Parallel()
	e, path := auditEnv(t, true)
	ctx := context.Background()
	c := e.client(1)
	aes, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "leak-aes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "leak-rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("audit-never-holds-this-plaintext")
	ct, err := c.Encrypt(ctx, aes.KeyTag, plain, []byte("ctx-value"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, aes.KeyTag, ct, []byte("ctx-value")); err != nil {
		t.Fatal(err)
	}
	ct2, err := c.ReEncrypt(ctx, aes.KeyTag, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := c.CreateCustomKey(ctx, aes.KeyTag, client.CustomKeyRequest{RequestPlainKey: true})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := c.Sign(ctx, rsa.KeyTag, plain)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Verify(ctx, rsa.KeyTag, plain, sig); err != nil || !ok {
		t.Fatalf("verify: %v %v", ok, err)
	}
	if err := c.CreateTokenGenerator(ctx, aes.KeyTag); err != nil {
		t.Fatal(err)
	}
	set, err := c.CreateTokenSet(ctx, aes.KeyTag, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewWithToken(e.srv.URL, set.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	ct3, err := tc.Encrypt(ctx, aes.KeyTag, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := client.NewWithToken(e.srv.URL, set.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	access2, err := rc.CreateAccessToken(ctx, aes.KeyTag, 1)
	if err != nil {
		t.Fatal(err)
	}
	tc.Encrypt(ctx, aes.KeyTag, plain, nil)
	cred, err := c.CreateAccessKey(ctx, 1, "crypto")
	if err != nil {
		t.Fatal(err)
	}
	e.rawWith("GET", "/kms/v1/keys", "", func(r *http.Request) { // the secret sent as a signature
		sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
		r.Header.Set(sigv2.HeaderSignatureV1, e.creds[1].SecretKey)
		r.Header.Set(sigv2.HeaderAccessKey, cred.SecretKey)
	})

	b64 := base64.StdEncoding.EncodeToString
	body := func(v string) string { return v[strings.LastIndex(v, ":")+1:] } // the Base64 of ncpkms:v<N>:…
	secrets := map[string]string{
		"plaintext": string(plain), "plaintext (Base64)": b64(plain), "context (Base64)": b64([]byte("ctx-value")),
		"ciphertext": body(ct), "re-encrypted ciphertext": body(ct2), "token ciphertext": body(ct3),
		"custom key": body(ck.Ciphertext), "custom key plaintext": b64(ck.Plaintext), "signature": body(sig),
		"access token": set.AccessToken, "refresh token": set.RefreshToken, "new access token": access2,
		"secret key": e.creds[1].SecretKey, "other secret key": e.creds[2].SecretKey, "new secret key": cred.SecretKey,
	}
	for _, tok := range []string{set.AccessToken, set.RefreshToken, access2} {
		secrets["token signature "+tok[:8]] = tok[strings.LastIndex(tok, ".")+1:]
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(auditRecords(t, path)); n < 15 {
		t.Fatalf("the audit log has %d lines, want one per request", n)
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		if bytes.Contains(log, []byte(s)) {
			t.Errorf("the audit log contains the %s", name)
		}
	}
}

// faultyAuditor is an Auditor whose Write (and Ready, as after a failed
// write) fail on demand; it keeps the entries it took.
type faultyAuditor struct {
	mu         sync.Mutex
	failWrite  bool // Write fails
	failReady  bool // Ready fails
	entries    []audit.Entry
	writeCalls int
}

var errDiskFull = errors.New("no space left on device (injected)")

func (a *faultyAuditor) Write(e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.writeCalls++
	if a.failWrite {
		return errDiskFull
	}
	a.entries = append(a.entries, e)
	return nil
}

func (a *faultyAuditor) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failReady {
		return errDiskFull
	}
	return nil
}

func (a *faultyAuditor) set(failWrite, failReady bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failWrite, a.failReady = failWrite, failReady
}

const internalBody = `{"code":"INTERNAL_SERVER_ERROR","msg":"Server internal error","data":null}` + "\n"

// TestAuditFailClosed: while the audit log cannot take lines, requests
// answer 500 and do nothing; once it can, they work again.
func TestAuditFailClosed(t *testing.T) {
	t.Parallel()
	aud := &faultyAuditor{}
	e := newEnvWith(t, func(c *api.Config) { c.Audit, c.AuditFailClosed = aud, true })
	status, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"before","keyType":"AES256"}`)
	if status != 200 {
		t.Fatalf("create: %d %s", status, b)
	}
	tag := data(t, b, "keyTag")

	aud.set(true, true) // a full disk: the last write failed, Ready says so
	status, b = e.raw("POST", "/kms/v1/keys", `{"keyName":"during","keyType":"AES256"}`)
	if status != 500 || string(b) != internalBody {
		t.Fatalf("create while the audit log fails: %d %s, want 500 %s", status, b, internalBody)
	}
	status, b = e.raw("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	if status != 500 || bytes.Contains(b, []byte("ncpkms:")) {
		t.Fatalf("encrypt while the audit log fails: %d %s, want 500 without a ciphertext", status, b)
	}
	if status, _ := e.rawWith("GET", "/healthz", "", nil); status != 500 {
		t.Fatalf("healthz while the audit log fails: %d, want 500", status)
	}
	if !strings.Contains(e.logs.String(), "refusing requests (fail-closed)") {
		t.Errorf("the refusal is not logged:\n%s", e.logs)
	}

	aud.set(false, false) // space freed
	status, b = e.raw("GET", "/kms/v1/keys", "")
	if status != 200 || !bytes.Contains(b, []byte(`"before"`)) || bytes.Contains(b, []byte(`"during"`)) {
		t.Fatalf("list keys after recovery: %d %s; want the key made before, not the refused one", status, b)
	}
	status, b = e.raw("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	if status != 200 || !bytes.Contains(b, []byte("ncpkms:v1:")) {
		t.Fatalf("encrypt after recovery: %d %s", status, b)
	}
}

// TestAuditFailClosedWriteFails: when the line of a request that already
// ran cannot be written, the answer is 500, not its result (the residual
// window: what it did stands).
func TestAuditFailClosedWriteFails(t *testing.T) {
	t.Parallel()
	aud := &faultyAuditor{}
	e := newEnvWith(t, func(c *api.Config) { c.Audit, c.AuditFailClosed = aud, true })
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"first","keyType":"AES256"}`)
	tag := data(t, b, "keyTag")

	aud.set(true, false) // Ready said yes; the write fails after the handler ran
	status, b := e.raw("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	if status != 500 || string(b) != internalBody {
		t.Fatalf("encrypt whose line fails: %d %s, want 500 %s", status, b, internalBody)
	}
	status, b = e.raw("POST", "/kms/v1/keys", `{"keyName":"second","keyType":"AES256"}`)
	if status != 500 || bytes.Contains(b, []byte("keyTag")) {
		t.Fatalf("create whose line fails: %d %s, want 500 without the key", status, b)
	}
	aud.set(false, false)
	_, b = e.raw("GET", "/kms/v1/keys", "")
	if !bytes.Contains(b, []byte(`"second"`)) {
		t.Fatalf("the key whose line failed is not there (the documented window says it stands): %s", b)
	}
}

// TestAuditFailOpen: by default a failing audit log is logged, once a
// second at most, and requests go on.
func TestAuditFailOpen(t *testing.T) {
	t.Parallel()
	aud := &faultyAuditor{}
	e := newEnvWith(t, func(c *api.Config) { c.Audit = aud })
	aud.set(true, true)
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"open","keyType":"AES256"}`)
	tag := data(t, b, "keyTag")
	for range 4 {
		status, b := e.raw("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
		if status != 200 || !bytes.Contains(b, []byte("ncpkms:v1:")) {
			t.Fatalf("encrypt with a failing audit log (fail-open): %d %s", status, b)
		}
	}
	logs := e.logs.String()
	n := strings.Count(logs, "level=ERROR msg=\"audit log not ready") + strings.Count(logs, "level=ERROR msg=\"cannot write the audit line")
	if n < 1 || n >= 5 {
		t.Errorf("%d audit error lines for 5 requests (10 failures), want 1 or a few:\n%s", n, logs)
	}
	if aud.writeCalls != 5 {
		t.Errorf("%d writes tried, want 5", aud.writeCalls)
	}
}
