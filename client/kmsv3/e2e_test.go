package kmsv3_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client/kmsv3"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

// TestAgainstServer drives every method of the client (all 45 operations
// of API 3.0) against a real nkms server: what the fake server of the
// other tests assumes from D9, the server answers.
func TestAgainstServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &nkms.Service{Store: mem.New(), Root: testkit.RootKey(t), Now: time.Now, DeletionWindow: nkms.DefaultDeletionWindow}
	srv := httptest.NewServer(api.New(svc, api.Config{PublicURL: "https://kms.example"}))
	t.Cleanup(srv.Close)
	admin, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kmsv3.New(srv.URL, admin.AccessKey, admin.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Keys and versions.
	aes, err := c.CreateKey(ctx, kmsv3.CreateKeyRequest{KeyName: "orders", KeyType: "AES256", ProtectionType: "BASIC",
		Memo: "payments", Rotation: kmsv3.RotationSettings{Enabled: true, PeriodDays: 30}})
	must("CreateKey", err)
	if aes.Status != "ENABLED" || aes.CurrentVersion != 1 || aes.Memo == nil || *aes.Memo != "payments" {
		t.Fatalf("created key %+v", aes)
	}
	tag := aes.KeyTag
	list, err := c.ListKeys(ctx, kmsv3.Page{})
	must("ListKeys", err)
	if list.TotalCount != 1 || len(list.Keys) != 1 || list.Keys[0].KeyTag != tag {
		t.Fatalf("ListKeys %+v", list)
	}
	_, err = c.GetKey(ctx, tag)
	must("GetKey", err)
	renamed, err := c.UpdateKey(ctx, tag, kmsv3.UpdateKeyRequest{KeyName: "orders-2", ClearMemo: true})
	must("UpdateKey", err)
	if renamed.KeyName != "orders-2" || renamed.Memo != nil {
		t.Fatalf("UpdateKey: %+v", renamed)
	}
	rot, err := c.GetKeyRotation(ctx, tag)
	must("GetKeyRotation", err)
	if !rot.Enabled || rot.PeriodDays != 30 {
		t.Fatalf("GetKeyRotation %+v", rot)
	}
	off := false
	_, err = c.UpdateKeyRotation(ctx, tag, kmsv3.UpdateKeyRotationRequest{Enabled: &off})
	must("UpdateKeyRotation", err)
	v2, err := c.CreateKeyVersion(ctx, tag)
	must("CreateKeyVersion", err)
	if v2.Version != 2 {
		t.Fatalf("CreateKeyVersion %+v", v2)
	}
	versions, err := c.ListKeyVersions(ctx, tag, kmsv3.Page{})
	must("ListKeyVersions", err)
	if versions.TotalCount != 2 {
		t.Fatalf("ListKeyVersions %+v", versions)
	}
	_, err = c.GetKeyVersion(ctx, tag, 1)
	must("GetKeyVersion", err)
	_, err = c.UpdateKeyVersion(ctx, tag, 1, kmsv3.UpdateKeyVersionRequest{Status: "ENABLED"})
	must("UpdateKeyVersion", err)

	// Crypto, single and batch, on the account routes.
	ct, err := c.Encrypt(ctx, tag, []byte("card 4111"), nil)
	must("Encrypt", err)
	pt, err := c.Decrypt(ctx, tag, ct, nil)
	must("Decrypt", err)
	if string(pt) != "card 4111" {
		t.Fatalf("Decrypt: %q", pt)
	}
	_, err = c.ReEncrypt(ctx, tag, ct, nil)
	must("ReEncrypt", err)
	cts, err := c.BatchEncrypt(ctx, tag, []kmsv3.EncryptRequest{{Plaintext: []byte("a")}, {Plaintext: []byte("b")}})
	must("BatchEncrypt", err)
	pts, err := c.BatchDecrypt(ctx, tag, []kmsv3.DecryptRequest{{Ciphertext: cts[0]}, {Ciphertext: cts[1]}})
	must("BatchDecrypt", err)
	if len(pts) != 2 || string(pts[0]) != "a" || string(pts[1]) != "b" {
		t.Fatalf("BatchDecrypt: %q", pts)
	}
	_, err = c.BatchReEncrypt(ctx, tag, []kmsv3.DecryptRequest{{Ciphertext: cts[0]}})
	must("BatchReEncrypt", err)
	var be *kmsv3.BatchError
	if _, err := c.BatchDecrypt(ctx, tag, []kmsv3.DecryptRequest{{Ciphertext: cts[0]}, {Ciphertext: "ncpkms:v1:AAAA"}}); !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[1] == nil {
		t.Fatalf("a batch with one bad item: %v, want a BatchError with failure 1", err)
	}
	ck, err := c.IssueCustomKey(ctx, tag, kmsv3.CustomKeyRequest{RequestPlainKey: true, Bits: 128})
	must("IssueCustomKey", err)
	if len(ck.Plaintext) != 16 {
		t.Fatalf("IssueCustomKey: %d bytes", len(ck.Plaintext))
	}
	ec, err := c.CreateKey(ctx, kmsv3.CreateKeyRequest{KeyName: "signer", KeyType: "ECDSA", ProtectionType: "BASIC"})
	must("CreateKey ECDSA", err)
	sig, err := c.Sign(ctx, ec.KeyTag, []byte("msg"))
	must("Sign", err)
	if ok, err := c.Verify(ctx, ec.KeyTag, []byte("msg"), sig); err != nil || !ok {
		t.Fatalf("Verify: %v %v", ok, err)
	}
	pub, err := c.GetPublicKey(ctx, ec.KeyTag, 1)
	must("GetPublicKey", err)
	if !bytes.Contains([]byte(pub.PublicKey), []byte("BEGIN PUBLIC KEY")) {
		t.Fatalf("GetPublicKey: %+v", pub)
	}

	// ACL, token generator and tokens; the token routes.
	_, err = c.AddKeyAclAllowedIps(ctx, tag, []string{"127.0.0.1", "10.0.*.*"})
	must("AddKeyAclAllowedIps", err)
	_, err = c.RemoveKeyAclAllowedIps(ctx, tag, []string{"10.0.*.*"})
	must("RemoveKeyAclAllowedIps", err)
	on := true
	_, err = c.UpdateKeyAcl(ctx, tag, kmsv3.UpdateKeyAclRequest{Enabled: &on})
	must("UpdateKeyAcl", err)
	acl, err := c.GetKeyAcl(ctx, tag)
	must("GetKeyAcl", err)
	if !acl.Enabled || len(acl.AllowedIps) != 1 {
		t.Fatalf("GetKeyAcl %+v", acl)
	}
	_, err = c.ActivateKeyTokenGenerator(ctx, ec.KeyTag)
	must("ActivateKeyTokenGenerator", err)
	_, err = c.RotateKeyTokenGenerator(ctx, ec.KeyTag)
	must("RotateKeyTokenGenerator", err)
	_, err = c.ActivateKeyTokenGenerator(ctx, tag)
	must("ActivateKeyTokenGenerator", err)
	gen, err := c.GetKeyTokenGenerator(ctx, tag)
	must("GetKeyTokenGenerator", err)
	if gen.Status != "ENABLED" || gen.TokenGeneratorID == "" {
		t.Fatalf("GetKeyTokenGenerator %+v", gen)
	}
	toks, err := c.IssueKeyTokens(ctx, tag, kmsv3.IssueTokensRequest{AccessTokenMinutes: 60, RefreshTokenHours: 24})
	must("IssueKeyTokens", err)
	refresh, err := kmsv3.NewWithToken(srv.URL, toks.RefreshToken)
	must("NewWithToken", err)
	again, err := refresh.ReissueKeyTokens(ctx, tag, kmsv3.IssueTokensRequest{})
	must("ReissueKeyTokens", err)
	_, err = refresh.IssueKeyAccessToken(ctx, tag, kmsv3.IssueAccessTokenRequest{AccessTokenMinutes: 5})
	must("IssueKeyAccessToken", err)
	tc, err := kmsv3.NewWithToken(srv.URL, again.AccessToken)
	must("NewWithToken", err)
	tct, err := tc.Encrypt(ctx, tag, []byte("by token"), nil)
	must("EncryptWithToken", err)
	if got, err := c.Decrypt(ctx, tag, tct, nil); err != nil || string(got) != "by token" {
		t.Fatalf("a token ciphertext on the account route: %q %v", got, err)
	}
	_, err = tc.Decrypt(ctx, tag, tct, nil)
	must("DecryptWithToken", err)
	_, err = tc.ReEncrypt(ctx, tag, tct, nil)
	must("ReEncryptWithToken", err)
	tcts, err := tc.BatchEncrypt(ctx, tag, []kmsv3.EncryptRequest{{Plaintext: []byte("x")}})
	must("BatchEncryptWithToken", err)
	_, err = tc.BatchDecrypt(ctx, tag, []kmsv3.DecryptRequest{{Ciphertext: tcts[0]}})
	must("BatchDecryptWithToken", err)
	_, err = tc.BatchReEncrypt(ctx, tag, []kmsv3.DecryptRequest{{Ciphertext: tcts[0]}})
	must("BatchReEncryptWithToken", err)
	_, err = tc.IssueCustomKey(ctx, tag, kmsv3.CustomKeyRequest{})
	must("IssueCustomKeyWithToken", err)
	ecToks, err := c.IssueKeyTokens(ctx, ec.KeyTag, kmsv3.IssueTokensRequest{})
	must("IssueKeyTokens ECDSA", err)
	ecc, err := kmsv3.NewWithToken(srv.URL, ecToks.AccessToken)
	must("NewWithToken", err)
	tsig, err := ecc.Sign(ctx, ec.KeyTag, []byte("m"))
	must("SignWithToken", err)
	if ok, err := ecc.Verify(ctx, ec.KeyTag, []byte("m"), tsig); err != nil || !ok {
		t.Fatalf("VerifyWithToken: %v %v", ok, err)
	}
	_, err = ecc.GetPublicKey(ctx, ec.KeyTag, 1)
	must("GetPublicKeyWithToken", err)
	_, err = c.DeactivateKeyTokenGenerator(ctx, ec.KeyTag)
	must("DeactivateKeyTokenGenerator", err)
	var e *kmsv3.Error
	if _, err := ecc.Sign(ctx, ec.KeyTag, []byte("m")); !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
		t.Fatalf("a token of a deactivated generator: %v, want 401", err)
	}

	// Usage logs, deletion.
	acts, err := c.ListKeyActivities(ctx, tag, kmsv3.ActivitiesRequest{ActionCode: []string{"Encrypt"}})
	must("ListKeyActivities", err)
	if acts.TotalCount < 2 {
		t.Fatalf("ListKeyActivities: %d Encrypt entries, want the account's and the token's", acts.TotalCount)
	}
	_, err = c.RequestKeyDeletion(ctx, ec.KeyTag)
	must("RequestKeyDeletion", err)
	_, err = c.CancelKeyDeletion(ctx, ec.KeyTag)
	must("CancelKeyDeletion", err)
	if _, err := c.RequestKeyDeletion(ctx, ec.KeyTag); err != nil {
		t.Fatal(err)
	}
	must("DeleteKey", c.DeleteKey(ctx, ec.KeyTag))
	if _, err := c.GetKey(ctx, ec.KeyTag); !errors.As(err, &e) || e.Status != http.StatusNotFound || e.ErrorCode != kmsv3.CodeResourceNotFound {
		t.Fatalf("a deleted key: %v, want 404 ResourceNotFound", err)
	}
}
