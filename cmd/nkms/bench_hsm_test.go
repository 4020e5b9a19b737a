package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestBenchHSM: `nkms bench --protection COMMON_HSM` against a server whose
// HSM is a SoftHSM2 token creates the run's key in the token and loads it;
// --op create-key makes COMMON_HSM keys. A key type the token cannot keep is
// refused in the words bench/run looks for ("refused to create a
// COMMON_HSM"), so that its row says so instead of failing the run.
func TestBenchHSM(t *testing.T) {
	tok := hsmtest.NewToken(t) // sets SOFTHSM2_CONF, which the processes inherit
	ctx := context.Background()
	env := append([]string{"NKMS_HSM_PIN=" + tok.PIN}, credEnv...)
	p := start(t, t.TempDir(), env, "--hsm-module", tok.Module, "--hsm-token", tok.Token)
	c := adminClient(t, p)
	url := []string{"--url", p.URL, "--protection", "COMMON_HSM", "--warmup", "0"}

	for _, tc := range []struct{ op, keyType string }{{"encrypt", "AES256"}, {"decrypt", "AES256"}, {"sign", "ECDSA"}} {
		r := benchJSON(t, credEnv, append(url, "--op", tc.op, "--key-type", tc.keyType, "--requests", "20", "--concurrency", "2")...)
		checkReport(t, r, tc.op, tc.keyType, 20)
		if r.Protection != "COMMON_HSM" {
			t.Errorf("%s %s: report says protection %q, want COMMON_HSM", tc.op, tc.keyType, r.Protection)
		}
		k, err := c.GetKey(ctx, r.KeyTag)
		if err != nil || k.ProtectionType != "COMMON_HSM" || k.KeyType != tc.keyType || k.Status != "REVOKE" {
			t.Errorf("%s %s: bench key after the run: %+v %v; want a COMMON_HSM key in REVOKE", tc.op, tc.keyType, k, err)
		}
	}

	r := benchJSON(t, credEnv, append(url, "--op", "create-key", "--requests", "4")...)
	checkReport(t, r, "create-key", "AES256", 4)
	keys, err := c.ListKeys(ctx, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	for _, k := range keys.KeyList {
		if strings.HasPrefix(k.KeyName, "b") && !strings.HasPrefix(k.KeyName, "bench-") {
			made++
			if k.ProtectionType != "COMMON_HSM" {
				t.Errorf("create-key --protection COMMON_HSM made %s %s", k.KeyName, k.ProtectionType)
			}
		}
	}
	if made != 5 { // the probe request creates one more
		t.Errorf("create-key made %d keys, want 5", made)
	}

	// RSA2048: the token keeps it, or the server refuses the key (400) and
	// bench says so; nothing else.
	out, errOut, err := runBench(t, credEnv, append(url, "--op", "sign", "--key-type", "RSA2048", "--requests", "5", "--format", "tsv")...)
	if err != nil {
		if !strings.Contains(errOut, "nkms: the server refused to create a COMMON_HSM RSA2048 key for the run: HTTP 400") {
			t.Fatalf("sign RSA2048 COMMON_HSM: %v\n%s", err, errOut)
		}
		t.Logf("this token refuses COMMON_HSM RSA2048 keys: %s", errOut)
	} else if !strings.Contains(out, "\tCOMMON_HSM\n") {
		t.Errorf("sign RSA2048 COMMON_HSM: tsv without the protection:\n%s", out)
	}
}
