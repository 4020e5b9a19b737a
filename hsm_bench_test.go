package nkms_test

import (
	"context"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

// BenchmarkHSM compares COMMON_HSM keys in a SoftHSM2 token with BASIC keys
// through the Service (no HTTP), on 32-byte messages: AES256 encrypt and
// decrypt, ECDSA sign, RSA2048 sign and decrypt (on SoftHSM2 2.6 the raw
// CKM_RSA_X_509 with the OAEP padding removed by nkms). SoftHSM2 is
// software; a real HSM's numbers differ (a network HSM adds a round trip
// per operation).
func BenchmarkHSM(b *testing.B) {
	ctx := context.Background()
	tok := hsmtest.Open(b)
	clk := testkit.NewClock(hsmT0)
	svc := &nkms.Service{Store: mem.New(), Root: testkit.RootKey(b), Now: clk.Now,
		DeletionWindow: nkms.DefaultDeletionWindow, HSM: tok,
		ActivityPerKey: 100} // a usage log that stays short: the cost of each call, not of a growing log
	creds, err := svc.Bootstrap(ctx)
	if err != nil {
		b.Fatal(err)
	}
	c := nkms.Caller{AccessKey: creds.AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	msg := make([]byte, 32)
	ops := map[nkms.KeyType][]string{nkms.AES256: {"encrypt", "decrypt"}, nkms.ECDSA: {"sign"}, nkms.RSA2048: {"sign", "decrypt"}}
	for _, p := range []nkms.Protection{nkms.ProtectionBasic, nkms.ProtectionCommonHSM} {
		for _, typ := range []nkms.KeyType{nkms.AES256, nkms.ECDSA, nkms.RSA2048} {
			k, err := svc.CreateKey(ctx, c, nkms.CreateKeyInput{Name: "k-" + string(typ)[:3] + "-" + string(p)[:3], Type: typ, Protection: p})
			if err != nil {
				b.Fatal(err)
			}
			tag, _ := nkms.ParseTag(k.Tag)
			ct, err := svc.Encrypt(ctx, c, tag, [][]byte{msg}, "")
			if err != nil && typ != nkms.ECDSA {
				b.Fatal(err)
			}
			for _, op := range ops[typ] {
				b.Run(string(p)+"/"+string(typ)+"/"+op, func(b *testing.B) {
					for b.Loop() {
						switch op {
						case "encrypt":
							_, err = svc.Encrypt(ctx, c, tag, [][]byte{msg}, "")
						case "decrypt":
							_, err = svc.Decrypt(ctx, c, tag, ct.Values, "")
						case "sign":
							_, err = svc.Sign(ctx, c, tag, msg)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
