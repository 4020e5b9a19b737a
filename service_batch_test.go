package nkms_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/nkms/nkms"
)

// The batch crypto of API 3.0 through the Service: all or nothing, failures
// by request index, one usage-log entry per batch.

func batchErr(t *testing.T, err error) *nkms.BatchError {
	t.Helper()
	var be *nkms.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a *BatchError", err)
	}
	return be
}

func TestBatchRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "conv", nkms.AES256, true)
	c1, c2 := base64.StdEncoding.EncodeToString([]byte("one")), base64.StdEncoding.EncodeToString([]byte("two"))
	items := []nkms.EncryptItem{{Plaintext: []byte("a"), Context: c1}, {Plaintext: []byte("b"), Context: c2}, {Plaintext: []byte("a"), Context: c2}}
	cts, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), items)
	if err != nil || len(cts.Values) != 3 || cts.Version != 1 {
		t.Fatalf("BatchEncrypt: %+v, %v", cts, err)
	}
	if cts.Values[0] == cts.Values[2] {
		t.Error("a convergent batch ignored the per-item context")
	}
	// Each item decrypts alone with its own context (the 2.0 call).
	if p, err := s.Decrypt(ctx, alice, k.KeyTag(), cts.Values[1:2], c2); err != nil || string(p.Values[0]) != "b" {
		t.Errorf("2.0 Decrypt of a batch item: %q, %v", p.Values, err)
	}
	dec := []nkms.CiphertextItem{{cts.Values[0], c1}, {cts.Values[1], c2}, {cts.Values[2], c2}}
	p, err := s.BatchDecrypt(ctx, alice, k.KeyTag(), dec)
	if err != nil || string(p.Values[0]) != "a" || string(p.Values[1]) != "b" || string(p.Values[2]) != "a" || p.Version != 1 {
		t.Fatalf("BatchDecrypt: %q v%d, %v", p.Values, p.Version, err)
	}
	if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	re, err := s.BatchReEncrypt(ctx, alice, k.KeyTag(), dec)
	if err != nil || re.Version != 2 || !strings.HasPrefix(re.Values[2], "ncpkms:v2:") {
		t.Fatalf("BatchReEncrypt: %+v, %v", re, err)
	}
	// Mixed versions: the answer names none.
	p, err = s.BatchDecrypt(ctx, alice, k.KeyTag(), []nkms.CiphertextItem{dec[0], {re.Values[1], c2}})
	if err != nil || p.Version != 0 || string(p.Values[1]) != "b" {
		t.Errorf("BatchDecrypt of two versions: %q v%d, %v", p.Values, p.Version, err)
	}
}

// TestBatchAllOrNothing: any failed item fails the batch; only the failed
// items are named, each with its field; a version the key does not have is a
// decryption failure like any other (no oracle).
func TestBatchAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "aes", nkms.AES256, false)
	cts, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), []nkms.EncryptItem{{Plaintext: []byte("a")}, {Plaintext: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.SplitN(cts.Values[0], ":", 3)[2]
	items := []nkms.CiphertextItem{
		{Ciphertext: cts.Values[0]},
		{Ciphertext: "ncpkms:v7:" + body},         // no such version
		{Ciphertext: cts.Values[1]},               // good
		{Ciphertext: "ncpkms:v1:AAAA" + body[4:]}, // tampered
	}
	p, err := s.BatchDecrypt(ctx, alice, k.KeyTag(), items)
	be := batchErr(t, err)
	if p.Values != nil {
		t.Errorf("a failed batch returned plaintexts: %q", p.Values)
	}
	if got := be.Indexes(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("failed items %v, want [1 3]", got)
	}
	for _, i := range []int{1, 3} {
		if nkms.ErrorCode(be.Failures[i]) != nkms.Invalid || nkms.ErrorField(be.Failures[i]) != "requests["+string(rune('0'+i))+"].ciphertext" ||
			nkms.ErrorMessage(be.Failures[i]) != nkms.ErrorMessage(nkms.ErrDecrypt) {
			t.Errorf("item %d: %v (field %q), want the decryption failure", i, be.Failures[i], nkms.ErrorField(be.Failures[i]))
		}
	}
	if nkms.ErrorCode(err) != nkms.Invalid {
		t.Errorf("batch code %s, want invalid", nkms.ErrorCode(err))
	}

	// Format first: a malformed item hides the others' later failures.
	_, err = s.BatchReEncrypt(ctx, alice, k.KeyTag(), []nkms.CiphertextItem{{Ciphertext: "garbage"}, items[1]})
	if got := batchErr(t, err).Indexes(); len(got) != 1 || got[0] != 0 {
		t.Errorf("stage one: failed items %v, want [0]", got)
	}

	// A disabled version is InvalidState for its items; mixed causes are Invalid.
	if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetVersionState(ctx, alice, k.KeyTag(), 1, nkms.StateDisable); err != nil {
		t.Fatal(err)
	}
	_, err = s.BatchDecrypt(ctx, alice, k.KeyTag(), items[:1])
	if be := batchErr(t, err); nkms.ErrorCode(be.Failures[0]) != nkms.InvalidState || be.Code() != nkms.InvalidState {
		t.Errorf("disabled version: %v, want InvalidState", err)
	}
	_, err = s.BatchDecrypt(ctx, alice, k.KeyTag(), items[:2])
	if be := batchErr(t, err); be.Code() != nkms.Invalid || len(be.Failures) != 2 {
		t.Errorf("two causes: %v, want Invalid with 2 failures", err)
	}

	// Too large an item, and the item bounds.
	_, err = s.BatchEncrypt(ctx, alice, k.KeyTag(), []nkms.EncryptItem{{Plaintext: []byte("a")}, {Plaintext: make([]byte, 32*1024+1)}})
	if got := batchErr(t, err).Indexes(); len(got) != 1 || got[0] != 1 {
		t.Errorf("too large: failed items %v, want [1]", got)
	}
	for _, n := range []int{0, nkms.MaxItems + 1} {
		_, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), make([]nkms.EncryptItem, n))
		var be *nkms.BatchError
		if nkms.ErrorCode(err) != nkms.Invalid || errors.As(err, &be) {
			t.Errorf("%d items: %v, want an Invalid error of the whole batch", n, err)
		}
	}
	if _, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), make([]nkms.EncryptItem, nkms.MaxItems)); err != nil {
		t.Errorf("%d empty items: %v", nkms.MaxItems, err)
	}
}

// TestBatchWholeRequestErrors: what concerns the key, not an item, is the
// batch's error, never failures.
func TestBatchWholeRequestErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "aes", nkms.AES256, false)
	ec := create(t, s, alice, "ecdsa", nkms.ECDSA, false)
	bad := []nkms.CiphertextItem{{Ciphertext: "garbage"}}
	if _, err := s.BatchDecrypt(ctx, bob, k.KeyTag(), bad); !errors.Is(err, nkms.ErrKeyNotFound) {
		t.Errorf("another keystore's key: %v", err)
	}
	if _, err := s.BatchDecrypt(ctx, alice, ec.KeyTag(), bad); nkms.ErrorCode(err) != nkms.Invalid || errors.As(err, new(*nkms.BatchError)) {
		t.Errorf("ECDSA key: %v", err)
	}
	if _, err := s.DisableKey(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), []nkms.EncryptItem{{Plaintext: make([]byte, 1<<20)}}); !errors.Is(err, nkms.ErrInvalidStatus) {
		t.Errorf("disabled key: %v, want ErrInvalidStatus", err)
	}
}

// TestBatchUsageLog: a batch is one usage-log entry under its own action,
// whatever its item count, success or failure.
func TestBatchUsageLog(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "aes", nkms.AES256, false)
	cts, err := s.BatchEncrypt(ctx, alice, k.KeyTag(), make([]nkms.EncryptItem, 50))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]nkms.CiphertextItem, len(cts.Values))
	for i, ct := range cts.Values {
		items[i] = nkms.CiphertextItem{Ciphertext: ct}
	}
	if _, err := s.BatchDecrypt(ctx, alice, k.KeyTag(), items); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BatchReEncrypt(ctx, alice, k.KeyTag(), append(items, nkms.CiphertextItem{Ciphertext: "x"})); err == nil {
		t.Fatal("a malformed item passed")
	}
	_, acts, _, err := s.Activities(ctx, alice, k.KeyTag(), nkms.ActivityQuery{PageNo: 1, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, a := range acts {
		got[a.Action+"/"+string(a.Result)]++
	}
	want := map[string]int{"CreateKey/" + string(nkms.ResultSuccess): 1, "BatchEncrypt/" + string(nkms.ResultSuccess): 1,
		"BatchDecrypt/" + string(nkms.ResultSuccess): 1, "BatchReEncrypt/" + string(nkms.ResultFail): 1}
	for a, n := range want {
		if got[a] != n {
			t.Errorf("usage log %v, want %v", got, want)
			break
		}
	}
}
