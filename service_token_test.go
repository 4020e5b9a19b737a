package nkms_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

var here = netip.MustParseAddr("198.51.100.7")

func TestTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	k := create(t, s, alice, "tokens", nkms.AES256, false)
	other := create(t, s, alice, "other", nkms.AES256, false)

	_, err := s.IssueTokenSet(ctx, alice, k.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	wantErr(t, err, nkms.ErrInvalidStatus) // no generator yet
	if _, err := s.CreateTokenGenerator(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateTokenGenerator(ctx, alice, k.KeyTag())
	wantErr(t, err, nkms.ErrInvalidStatus) // already active
	if _, err := s.CreateTokenGenerator(ctx, alice, other.KeyTag()); err != nil {
		t.Fatal(err)
	}
	set, err := s.IssueTokenSet(ctx, alice, k.KeyTag(), nkms.Lifetime{Hours: 1}, nkms.Lifetime{Unlimited: true})
	if err != nil {
		t.Fatal(err)
	}
	otherSet, err := s.IssueTokenSet(ctx, alice, other.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.AuthenticateToken(ctx, parseTag(t, strings.ToUpper(k.Tag)), set.Access, nkms.AccessToken, here)
	if err != nil {
		t.Fatalf("valid access token: %v", err)
	}
	if c.AccessKey != alice.AccessKey || c.Keystore != alice.Keystore || c.Role != nkms.RoleCrypto || !c.Token || c.IP != here.String() {
		t.Fatalf("token caller %+v", c)
	}
	got, _ := s.GetKey(ctx, alice, k.KeyTag())
	if got.TokenGen.Issued != 2 {
		t.Fatalf("issued count %d, want 2", got.TokenGen.Issued)
	}
	refreshed, err := s.AuthenticateToken(ctx, k.KeyTag(), set.Refresh, nkms.RefreshToken, here)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueAccessToken(ctx, refreshed, k.KeyTag(), nkms.Lifetime{}); err != nil {
		t.Fatalf("access token from a refresh token: %v", err)
	}

	bad := map[string]struct{ tag, tok, typ string }{
		"refresh as access":  {k.Tag, set.Refresh, nkms.AccessToken},
		"access as refresh":  {k.Tag, set.Access, nkms.RefreshToken},
		"token of other key": {k.Tag, otherSet.Access, nkms.AccessToken},
		"tampered":           {k.Tag, set.Access[:len(set.Access)-3] + "abc", nkms.AccessToken},
		"garbage":            {k.Tag, "x.y.z", nkms.AccessToken},
		"unknown key":        {strings.Repeat("0", 64), set.Access, nkms.AccessToken},
	}
	for name, b := range bad {
		if _, err := s.AuthenticateToken(ctx, parseTag(t, b.tag), b.tok, b.typ, here); nkms.ErrorCode(err) != nkms.Unauthenticated {
			t.Errorf("%s: got %v, want Unauthenticated", name, err)
		}
	}
	clk.Add(time.Hour)
	if _, err := s.AuthenticateToken(ctx, k.KeyTag(), set.Access, nkms.AccessToken, here); nkms.ErrorCode(err) != nkms.Unauthenticated {
		t.Fatalf("expired access token: %v", err)
	}
	clk.Add(10000 * time.Hour)
	if _, err := s.AuthenticateToken(ctx, k.KeyTag(), set.Refresh, nkms.RefreshToken, here); err != nil {
		t.Fatalf("unlimited refresh token: %v", err)
	}
	if _, err := s.ReplaceTokenGenerator(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, k.KeyTag(), set.Refresh, nkms.RefreshToken, here); nkms.ErrorCode(err) != nkms.Unauthenticated {
		t.Fatalf("token of a replaced generator: %v", err)
	}
	got, _ = s.GetKey(ctx, alice, k.KeyTag())
	if got.TokenGen.Issued != 0 {
		t.Fatalf("issued count after replace %d, want 0", got.TokenGen.Issued)
	}
	fresh, _ := s.IssueTokenSet(ctx, alice, k.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	if _, err := s.DeleteTokenGenerator(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, k.KeyTag(), fresh.Access, nkms.AccessToken, here); nkms.ErrorCode(err) != nkms.Unauthenticated {
		t.Fatalf("token of a deleted generator: %v", err)
	}
	_, err = s.DeleteTokenGenerator(ctx, alice, k.KeyTag())
	wantErr(t, err, nkms.ErrInvalidStatus)
	_, err = s.ReplaceTokenGenerator(ctx, alice, k.KeyTag())
	wantErr(t, err, nkms.ErrInvalidStatus)

	for _, h := range []nkms.Lifetime{{Hours: -1}, {Hours: 17521}} {
		_, err := s.IssueTokenSet(ctx, alice, other.KeyTag(), h, nkms.Lifetime{})
		wantCode(t, err, nkms.Invalid)
	}
	_, err = s.CreateTokenGenerator(ctx, bob, other.KeyTag())
	if !errors.Is(err, nkms.ErrKeyNotFound) {
		t.Fatalf("another keystore's generator: %v", err)
	}
}

func TestIPACL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := create(t, s, alice, "acl", nkms.AES256, false)
	if _, err := s.CreateTokenGenerator(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	set, _ := s.IssueTokenSet(ctx, alice, k.KeyTag(), nkms.Lifetime{}, nkms.Lifetime{})
	// The IP ACL is checked when a token call uses the key.
	auth := func(ip string) error {
		c, err := s.AuthenticateToken(ctx, k.KeyTag(), set.Access, nkms.AccessToken, netip.MustParseAddr(ip))
		if err != nil {
			return err
		}
		_, err = s.Encrypt(ctx, c, k.KeyTag(), [][]byte{[]byte("x")}, "")
		return err
	}
	if err := auth("203.0.113.9"); err != nil {
		t.Fatalf("ACL off: %v", err)
	}
	if _, err := s.SetACL(ctx, alice, k.KeyTag(), true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, auth("203.0.113.9"), nkms.Forbidden) // enabled with an empty list denies all
	added, err := s.AddACL(ctx, alice, k.KeyTag(), []string{"203.0.113.9", "10.1.2.3/16", "203.0.113.9"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(added.AllowedIPs, ",") != "203.0.113.9,10.1.0.0/16" {
		t.Fatalf("list %q", added.AllowedIPs)
	}
	for ip, allowed := range map[string]bool{"203.0.113.9": true, "10.1.200.1": true, "10.2.0.1": false, "203.0.113.10": false, "::ffff:203.0.113.9": true} {
		if err := auth(ip); (err == nil) != allowed {
			t.Errorf("%s: got %v, want allowed=%v", ip, err, allowed)
		}
	}
	if _, err := s.DeleteACL(ctx, alice, k.KeyTag(), []string{"203.0.113.9", "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, auth("203.0.113.9"), nkms.Forbidden)
	for _, bad := range [][]string{nil, {"2001:db8::1"}, {"1.2.3"}, {"1.2.3.4/33"}, {"01.2.3.4"}, {"host.example"}} {
		_, err := s.AddACL(ctx, alice, k.KeyTag(), bad)
		wantCode(t, err, nkms.Invalid)
	}
	if _, err := s.SetACL(ctx, alice, k.KeyTag(), false); err != nil {
		t.Fatal(err)
	}
	if err := auth("192.0.2.200"); err != nil {
		t.Fatalf("ACL off again: %v", err)
	}
	if _, err := s.RequestDeletion(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetACL(ctx, alice, k.KeyTag(), true)
	wantErr(t, err, nkms.ErrInvalidStatus)
}

// parseTag parses a keyTag a test spells out.
func parseTag(t *testing.T, s string) nkms.Tag {
	t.Helper()
	tag, err := nkms.ParseTag(s)
	if err != nil {
		t.Fatalf("ParseTag(%q): %v", s, err)
	}
	return tag
}
