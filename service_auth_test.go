package nkms_test

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

// TestAuthorizationTable calls every Service operation with every role and
// with both kinds of key token, and compares who is refused with
// decisions.md D10: admin everything; manager lifecycle, settings and reads;
// crypto the crypto operations, token sets and reads; viewer reads. A key
// token does only crypto (access token) or token renewal (refresh token),
// on its own key. The Service decides this itself: in-process callers get
// the same answers as HTTP callers.
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	aes := create(t, s, alice, "aes", nkms.AES256, false)
	rsa := create(t, s, alice, "rsa", nkms.RSA2048, false)
	if _, err := s.CreateTokenGenerator(ctx, alice, aes.KeyTag()); err != nil {
		t.Fatal(err)
	}
	set, err := s.IssueTokenSet(ctx, alice, aes.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	here := netip.MustParseAddr("192.0.2.1")
	accessTok, err := s.AuthenticateToken(ctx, aes.KeyTag(), set.Access, nkms.AccessToken, here)
	if err != nil {
		t.Fatal(err)
	}
	refreshTok, err := s.AuthenticateToken(ctx, aes.KeyTag(), set.Refresh, nkms.RefreshToken, here)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := s.Encrypt(ctx, alice, aes.KeyTag(), [][]byte{[]byte("x")}, "")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(ctx, alice, rsa.KeyTag(), []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	tag := aes.KeyTag()

	const (
		read, cryptoOp, manage, admin = "read", "crypto", "manage", "admin"
		access, refresh               = "access", "refresh" // what a key token may also call
	)
	// Each operation: the permission D10 gives it, what kind of key token may
	// call it ("" none), and a call that does not change what the others see
	// (state changes that succeed are undone or harmless).
	ops := map[string]struct {
		perm, token string
		call        func(c nkms.Caller) error
	}{
		"CreateKey": {manage, "", func(c nkms.Caller) error {
			_, err := s.CreateKey(ctx, c, nkms.CreateKeyInput{Name: "k" + strings.ReplaceAll(c.AccessKey, "-", ""), Type: nkms.AES256})
			return err
		}},
		"ListKeys":     {read, "", func(c nkms.Caller) error { _, _, err := s.ListKeys(ctx, c, 1, 10); return err }},
		"GetKey":       {read, "", func(c nkms.Caller) error { _, err := s.GetKey(ctx, c, tag); return err }},
		"ListVersions": {read, "", func(c nkms.Caller) error { _, err := s.ListVersions(ctx, c, tag); return err }},
		"EnableKey":    {manage, "", func(c nkms.Caller) error { _, err := s.EnableKey(ctx, c, tag); return err }},
		"DisableKey": {manage, "", func(c nkms.Caller) error {
			_, err := s.DisableKey(ctx, c, rsa.KeyTag())
			if err == nil {
				_, err = s.EnableKey(ctx, alice, rsa.KeyTag())
			}
			return err
		}},
		"UpdateName": {manage, "", func(c nkms.Caller) error { _, err := s.UpdateName(ctx, c, tag, "aes"); return err }},
		"UpdateMemo": {manage, "", func(c nkms.Caller) error { _, err := s.UpdateMemo(ctx, c, tag, "m"); return err }},
		"Rotate":     {manage, "", func(c nkms.Caller) error { _, err := s.Rotate(ctx, c, rsa.KeyTag()); return err }},
		"EnableAutoRotation": {manage, "", func(c nkms.Caller) error {
			_, err := s.EnableAutoRotation(ctx, c, tag)
			return err
		}},
		"DisableAutoRotation": {manage, "", func(c nkms.Caller) error {
			_, err := s.DisableAutoRotation(ctx, c, rsa.KeyTag())
			return err
		}},
		"UpdateRotationPeriod": {manage, "", func(c nkms.Caller) error {
			_, err := s.UpdateRotationPeriod(ctx, c, tag, 30)
			return ignore(err, nkms.InvalidState) // before EnableAutoRotation has run

		}},
		"SetVersionState": {manage, "", func(c nkms.Caller) error {
			_, err := s.SetVersionState(ctx, c, tag, 1, nkms.StateEnable)
			return err
		}},
		"RequestDeletion": {manage, "", func(c nkms.Caller) error {
			_, err := s.RequestDeletion(ctx, c, rsa.KeyTag())
			if err == nil {
				_, err = s.CancelDeletion(ctx, alice, rsa.KeyTag())
			}
			if err == nil {
				_, err = s.EnableKey(ctx, alice, rsa.KeyTag())
			}
			return err
		}},
		"CancelDeletion": {manage, "", func(c nkms.Caller) error {
			_, err := s.CancelDeletion(ctx, c, tag)
			return ignore(err, nkms.InvalidState)
		}},
		"DeleteKey": {manage, "", func(c nkms.Caller) error { return ignore(s.DeleteKey(ctx, c, tag), nkms.InvalidState) }},

		// API 3.0 (service_v3.go).
		"CreateKeyV3": {manage, "", func(c nkms.Caller) error {
			_, err := s.CreateKeyV3(ctx, c, nkms.CreateKeyV3Input{Name: "v" + strings.ReplaceAll(c.AccessKey, "-", ""),
				Type: nkms.AES256, Protection: nkms.ProtectionBasic})
			return err
		}},
		"UpdateKeyV3": {manage, "", func(c nkms.Caller) error {
			_, err := s.UpdateKeyV3(ctx, c, tag, nkms.KeyPatch{})
			return err
		}},
		"UpdateKeyRotationV3": {manage, "", func(c nkms.Caller) error {
			_, err := s.UpdateKeyRotationV3(ctx, c, tag, nkms.RotationPatch{})
			return err
		}},
		"CreateKeyVersion": {manage, "", func(c nkms.Caller) error {
			_, err := s.CreateKeyVersion(ctx, c, rsa.KeyTag())
			return err
		}},
		"ListKeyVersions": {read, "", func(c nkms.Caller) error {
			_, _, err := s.ListKeyVersions(ctx, c, tag, 1, 10)
			return err
		}},
		"GetKeyVersion": {read, "", func(c nkms.Caller) error { _, err := s.GetKeyVersion(ctx, c, tag, 1); return err }},
		"UpdateKeyVersion": {manage, "", func(c nkms.Caller) error {
			st := nkms.StateEnable
			if _, err := s.UpdateKeyVersion(ctx, c, tag, 1, nil); err != nil {
				return err
			}
			_, err := s.UpdateKeyVersion(ctx, c, tag, 1, &st)
			return err
		}},

		"Encrypt": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.Encrypt(ctx, c, tag, [][]byte{[]byte("x")}, "")
			return err
		}},
		"Decrypt":   {cryptoOp, access, func(c nkms.Caller) error { _, err := s.Decrypt(ctx, c, tag, ct.Values, ""); return err }},
		"ReEncrypt": {cryptoOp, access, func(c nkms.Caller) error { _, err := s.ReEncrypt(ctx, c, tag, ct.Values, ""); return err }},
		"BatchEncrypt": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.BatchEncrypt(ctx, c, tag, []nkms.EncryptItem{{Plaintext: []byte("x")}})
			return err
		}},
		"BatchDecrypt": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.BatchDecrypt(ctx, c, tag, []nkms.CiphertextItem{{Ciphertext: ct.Values[0]}})
			return err
		}},
		"BatchReEncrypt": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.BatchReEncrypt(ctx, c, tag, []nkms.CiphertextItem{{Ciphertext: ct.Values[0]}})
			return err
		}},
		"CreateCustomKey": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.CreateCustomKey(ctx, c, tag, 0, false, "")
			return err
		}},
		// Sign, Verify and PublicKey on the AES key: a permitted caller gets
		// Invalid (wrong key type), a refused one PermissionDenied.
		"Sign": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.Sign(ctx, c, tag, []byte("m"))
			return ignore(err, nkms.Invalid)
		}},
		"Verify": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.Verify(ctx, c, tag, []byte("m"), sig.Value)
			return ignore(err, nkms.Invalid)
		}},
		"PublicKey": {cryptoOp, access, func(c nkms.Caller) error {
			_, err := s.PublicKey(ctx, c, tag, 0)
			return ignore(err, nkms.Invalid)
		}},

		"SetACL": {manage, "", func(c nkms.Caller) error { _, err := s.SetACL(ctx, c, tag, false); return err }},
		"AddACL": {manage, "", func(c nkms.Caller) error {
			_, err := s.AddACL(ctx, c, tag, []string{"192.0.2.1"})
			return err
		}},
		"DeleteACL": {manage, "", func(c nkms.Caller) error {
			_, err := s.DeleteACL(ctx, c, tag, []string{"192.0.2.200"})
			return err
		}},
		"CreateTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.CreateTokenGenerator(ctx, c, tag)
			return ignore(err, nkms.InvalidState) // it exists
		}},
		"ReplaceTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.ReplaceTokenGenerator(ctx, c, rsa.KeyTag())
			return ignore(err, nkms.InvalidState) // none on this key
		}},
		"DeleteTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.DeleteTokenGenerator(ctx, c, rsa.KeyTag())
			return ignore(err, nkms.InvalidState) // none on this key
		}},
		"IssueTokenSet": {cryptoOp, refresh, func(c nkms.Caller) error {
			_, err := s.IssueTokenSet(ctx, c, tag, nkms.Lifetime{}, nkms.Lifetime{})
			return err
		}},
		"IssueAccessToken": {cryptoOp, refresh, func(c nkms.Caller) error {
			_, err := s.IssueAccessToken(ctx, c, tag, nkms.Lifetime{})
			return err
		}},

		// API 3.0: ACL, token generator and tokens (service_v3_access.go).
		"UpdateKeyACL": {manage, "", func(c nkms.Caller) error {
			off := false
			_, err := s.UpdateKeyACL(ctx, c, tag, &off)
			return err
		}},
		"AddKeyACLAllowedIPs": {manage, "", func(c nkms.Caller) error {
			_, err := s.AddKeyACLAllowedIPs(ctx, c, tag, []string{"192.0.*.1"})
			return err
		}},
		"RemoveKeyACLAllowedIPs": {manage, "", func(c nkms.Caller) error {
			_, err := s.RemoveKeyACLAllowedIPs(ctx, c, tag, []string{"192.0.2.200"})
			return ignore(err, nkms.Invalid) // not in the list
		}},
		"ActivateTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.ActivateTokenGenerator(ctx, c, tag) // active: stays as it is
			return err
		}},
		"RotateTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.RotateTokenGenerator(ctx, c, rsa.KeyTag())
			return ignore(err, nkms.InvalidState) // none on this key
		}},
		"DeactivateTokenGenerator": {manage, "", func(c nkms.Caller) error {
			_, err := s.DeactivateTokenGenerator(ctx, c, rsa.KeyTag()) // inactive: stays so
			return err
		}},
		"IssueKeyTokens": {cryptoOp, "", func(c nkms.Caller) error {
			_, err := s.IssueKeyTokens(ctx, c, tag, nkms.TokenLifetimes{})
			return err
		}},
		"ReissueKeyTokens": {cryptoOp, refresh, func(c nkms.Caller) error {
			_, err := s.ReissueKeyTokens(ctx, c, tag, nkms.TokenLifetimes{})
			return err
		}},
		"IssueKeyAccessToken": {cryptoOp, refresh, func(c nkms.Caller) error {
			_, err := s.IssueKeyAccessToken(ctx, c, tag, nkms.TokenLifetimes{})
			return err
		}},

		"Activities": {read, "", func(c nkms.Caller) error {
			_, _, _, err := s.Activities(ctx, c, tag, nkms.ActivityQuery{PageNo: 1, PageSize: 10})
			return err
		}},
		"LastUse": {read, "", func(c nkms.Caller) error { _, _, err := s.LastUse(ctx, c, tag); return err }},

		"CreateAccessKey": {admin, "", func(c nkms.Caller) error {
			_, err := s.CreateAccessKey(ctx, c, 1, nkms.RoleViewer)
			return err
		}},
		"ListAccessKeys": {admin, "", func(c nkms.Caller) error { _, err := s.ListAccessKeys(ctx, c); return err }},
		"RevokeAccessKey": {admin, "", func(c nkms.Caller) error {
			return ignore(s.RevokeAccessKey(ctx, c, "no-such-key"), nkms.NotFound)
		}},
		"BackupAllowed": {admin, "", func(c nkms.Caller) error {
			return ignore(s.BackupAllowed(c), nkms.Invalid) // the mem store cannot back up
		}},
		"Backup": {admin, "", func(c nkms.Caller) error {
			return ignore(s.Backup(ctx, c, func(nkms.Snapshot) error { return nil }), nkms.Invalid)
		}},
		"ExportSeed": {admin, "", func(c nkms.Caller) error { _, err := s.ExportSeed(ctx, c, false); return err }},
		"AdvanceClock": {admin, "", func(c nkms.Caller) error { // operators only (devclock_test.go)
			_, err := s.AdvanceClock(ctx, c, time.Hour)
			return ignore(err, nkms.Invalid) // this service has no DevClock
		}},
		"Clock": {read, "", func(c nkms.Caller) error {
			_, err := s.Clock(ctx, c)
			return ignore(err, nkms.Invalid)
		}},
	}

	// Every exported Service method that takes a Caller is in the table.
	caller := reflect.TypeFor[nkms.Caller]()
	st := reflect.TypeFor[*nkms.Service]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		takesCaller := false
		for j := 1; j < m.Type.NumIn(); j++ {
			takesCaller = takesCaller || m.Type.In(j) == caller
		}
		if _, ok := ops[m.Name]; takesCaller && !ok {
			t.Errorf("Service.%s takes a Caller but is not in this test's table", m.Name)
		}
	}

	// D10, written out.
	roles := map[nkms.Role][]string{
		nkms.RoleAdmin:   {read, cryptoOp, manage, admin},
		nkms.RoleManager: {read, manage},
		nkms.RoleCrypto:  {read, cryptoOp},
		nkms.RoleViewer:  {read},
	}
	callers := map[string]nkms.Caller{"access token": accessTok, "refresh token": refreshTok}
	for role := range roles {
		callers[string(role)] = nkms.Caller{AccessKey: "ak-" + string(role), Keystore: 1, Role: role}
	}
	for who, c := range callers {
		for name, op := range ops {
			var want bool
			switch who {
			case "access token":
				want = op.token == access
			case "refresh token":
				want = op.token == refresh
			default:
				for _, p := range roles[c.Role] {
					want = want || p == op.perm
				}
			}
			err := op.call(c)
			refused := nkms.ErrorCode(err) == nkms.PermissionDenied
			if refused == want || (!refused && err != nil) {
				t.Errorf("%s calls %s: got %v, want allowed=%v", who, name, err, want)
			}
		}
	}
}

// TestTokenCallerOnlyOnItsKey: a key token authorizes calls on its own key only.
func TestTokenCallerOnlyOnItsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	mine := create(t, s, alice, "mine", nkms.AES256, false)
	other := create(t, s, alice, "other", nkms.AES256, false)
	if _, err := s.CreateTokenGenerator(ctx, alice, mine.KeyTag()); err != nil {
		t.Fatal(err)
	}
	set, err := s.IssueTokenSet(ctx, alice, mine.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.AuthenticateToken(ctx, mine.KeyTag(), set.Access, nkms.AccessToken, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Encrypt(ctx, c, mine.KeyTag(), [][]byte{[]byte("x")}, ""); err != nil {
		t.Fatalf("own key: %v", err)
	}
	_, err = s.Encrypt(ctx, c, other.KeyTag(), [][]byte{[]byte("x")}, "")
	wantCode(t, err, nkms.PermissionDenied)
}

// ignore turns an error of the given code into nil: the call was allowed
// and then refused for another reason the test expects.
func ignore(err error, code nkms.Code) error {
	if nkms.ErrorCode(err) == code {
		return nil
	}
	return err
}
