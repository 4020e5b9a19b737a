package nkms_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestHSMSweepOrphanHalves: the start-up sweep finds what is left of a
// destroyed COMMON_HSM key pair whose deletion stopped half-way — a lone
// public key (the private half was deleted first) or a lone private key
// (its public half deleted by someone else: secret material) — and,
// once older than the grace period, deletes it, while a live key's pair and
// an object that is not nkms's stay.
func TestHSMSweepOrphanHalves(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, false, false)
	tok, cfg := hsmtest.OpenConfig(t)
	e.svc.HSM, e.tok = tok, tok

	live, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "live", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	lose := map[string]hsmtest.Class{"lonepriv": hsmtest.PublicKey, "lonepub": hsmtest.PrivateKey}
	var deadIDs [][]byte
	for name, class := range lose {
		k, err := e.v2.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: "ECDSA", ProtectionType: "COMMON_HSM"})
		if err != nil {
			t.Fatal(err)
		}
		var id []byte
		for _, o := range e.objects(t) {
			if strings.Contains(o.Label, k.KeyTag) {
				id = o.ID
			}
		}
		if id == nil {
			t.Fatalf("no token object for key %s", name)
		}
		deadIDs = append(deadIDs, id)
		// The crash: the key leaves the store, and one half of its pair
		// the token; the other half stays.
		if err := e.svc.Store.Delete(ctx, k.KeyTag, func(*nkms.Key) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if n := hsmtest.DeleteObjects(t, cfg, id, class); n != 1 {
			t.Fatalf("%s: deleted %d objects, want 1", name, n)
		}
	}
	hsmtest.GenerateForeign(t, cfg, deadIDs[0], "not-nkms")
	if n := len(e.objects(t)); n != 3 {
		t.Fatalf("objects before the sweep: %d, want 3 (the live pair and two lone halves)", n)
	}
	if r, err := e.svc.StartHSM(ctx); err != nil || r.Swept != 0 || r.TokenVersions != 1 || r.Missing != 0 {
		t.Fatalf("StartHSM within the grace period: %+v, %v; want nothing swept, 1 token version", r, err)
	}
	e.clk.Add(2 * time.Hour)
	if r, err := e.svc.StartHSM(ctx); err != nil || r.Swept != 2 {
		t.Fatalf("StartHSM after the grace period: %+v, %v; want the 2 lone halves swept", r, err)
	}
	for i, id := range deadIDs {
		for _, c := range []hsmtest.Class{hsmtest.PrivateKey, hsmtest.PublicKey} {
			if n := hsmtest.CountObjects(t, cfg, id, c); n != 0 {
				t.Errorf("destroyed key %d: %d objects of class %d left after the sweep", i, n, c)
			}
		}
	}
	if n := hsmtest.CountObjects(t, cfg, deadIDs[0], hsmtest.SecretKey); n != 1 {
		t.Errorf("the object that is not nkms's: %d left, want 1", n)
	}
	objs := e.objects(t)
	if len(objs) != 1 || !strings.HasPrefix(objs[0].Label, hsm.LabelPrefix+live.KeyTag+":v1:") {
		t.Fatalf("objects after the sweep: %v; want the live key's v1", objs)
	}
	if _, err := e.v2.Sign(ctx, live.KeyTag, []byte("still here")); err != nil {
		t.Fatalf("the live key after the sweep: %v", err)
	}
}
