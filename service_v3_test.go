package nkms_test

import (
	"context"
	"slices"
	"testing"

	"github.com/nkms/nkms"
)

func kv3Create(t *testing.T, s *nkms.Service, c nkms.Caller, name string) *nkms.Key {
	t.Helper()
	k, err := s.CreateKeyV3(context.Background(), c, nkms.CreateKeyV3Input{Name: name, Type: nkms.AES256,
		Protection: nkms.ProtectionBasic, Rotation: true, PeriodDays: 30, PeriodDaysSent: true})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k
}

// TestCreateKeyV3Refusals: each refusal names the 3.0 field at fault.
func TestCreateKeyV3Refusals(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	ok := nkms.CreateKeyV3Input{Name: "good", Type: nkms.AES256, Protection: nkms.ProtectionBasic}
	for field, in := range map[string]nkms.CreateKeyV3Input{
		"keyName":             {Name: "x", Type: ok.Type, Protection: ok.Protection},
		"keyType":             {Name: ok.Name, Type: "HMAC", Protection: ok.Protection},
		"protectionType":      {Name: ok.Name, Type: ok.Type, Protection: nkms.ProtectionCommonHSM},
		"memo":                {Name: ok.Name, Type: ok.Type, Protection: ok.Protection, Memo: kv3Ptr("<b></b>")},
		"convergent":          {Name: ok.Name, Type: nkms.ECDSA, Protection: ok.Protection, Convergent: true},
		"rotation.periodDays": {Name: ok.Name, Type: ok.Type, Protection: ok.Protection, PeriodDays: 0, PeriodDaysSent: true},
	} {
		_, err := s.CreateKeyV3(context.Background(), alice, in)
		if nkms.ErrorCode(err) != nkms.Invalid || nkms.ErrorField(err) != field {
			t.Errorf("%s: got %v (field %q), want Invalid about %s", field, err, nkms.ErrorField(err), field)
		}
	}
	if _, err := s.CreateKeyV3(context.Background(), alice, ok); err != nil {
		t.Fatal(err)
	}
}

// TestServiceV3UsageLog: the 3.0 changes enter the key's usage log under
// the D9 action names (UpdateKey, UpdateKeyRotation, RotateKey,
// DisableKeyVersion), successes and failures alike.
func TestServiceV3UsageLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := kv3Create(t, s, alice, "logged")
	tag := k.KeyTag()
	if _, err := s.UpdateKeyV3(ctx, alice, tag, nkms.KeyPatch{Memo: kv3Ptr("m")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateKeyRotationV3(ctx, alice, tag, nkms.RotationPatch{Enabled: kv3Ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKeyVersion(ctx, alice, tag); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateKeyVersion(ctx, alice, tag, 1, kv3Ptr(nkms.StateDisable)); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateKeyVersion(ctx, alice, tag, 2, kv3Ptr(nkms.StateDisable))
	wantErr(t, err, nkms.ErrInvalidStatus) // the current version
	_, list, _, err := s.Activities(ctx, alice, tag, nkms.ActivityQuery{PageNo: 1, PageSize: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range list {
		got = append(got, a.Action+" "+a.Result)
	}
	slices.Reverse(got) // oldest first
	want := []string{"CreateKey SUCCESS", "UpdateKey SUCCESS", "UpdateKeyRotation SUCCESS", "RotateKey SUCCESS",
		"DisableKeyVersion SUCCESS", "DisableKeyVersion FAIL"}
	if !slices.Equal(got, want) {
		t.Errorf("usage log %q, want %q", got, want)
	}
}

// TestListKeyVersions pages through the store's versions (pageNo from 1)
// and marks the current one; another keystore's key is not found.
func TestListKeyVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	k := kv3Create(t, s, alice, "paged")
	for range 4 {
		if _, err := s.CreateKeyVersion(ctx, alice, k.KeyTag()); err != nil {
			t.Fatal(err)
		}
	}
	var got []int
	for page := 1; page <= 3; page++ {
		vs, total, err := s.ListKeyVersions(ctx, alice, k.KeyTag(), page, 2)
		if err != nil || total != 5 {
			t.Fatalf("page %d: total %d, %v", page, total, err)
		}
		for _, v := range vs {
			if v.Sealed != nil || v.Current != (v.Number == 5) {
				t.Errorf("version %d: current %v, sealed %d bytes", v.Number, v.Current, len(v.Sealed))
			}
			got = append(got, v.Number)
		}
	}
	if !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("versions %v", got)
	}
	_, _, err := s.ListKeyVersions(ctx, bob, k.KeyTag(), 1, 2)
	wantErr(t, err, nkms.ErrKeyNotFound)
	_, err = s.GetKeyVersion(ctx, bob, k.KeyTag(), 1)
	wantErr(t, err, nkms.ErrKeyNotFound)
	_, err = s.GetKeyVersion(ctx, alice, k.KeyTag(), 6)
	wantErr(t, err, nkms.ErrVersionNotFound)
	_, err = s.UpdateKeyVersion(ctx, bob, k.KeyTag(), 1, nil)
	wantErr(t, err, nkms.ErrKeyNotFound)
}

// TestUpdateKeyV3NameUnique: a name another key of the keystore has is a
// conflict (the store's check), another keystore's is not.
func TestUpdateKeyV3NameUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	a := kv3Create(t, s, alice, "first")
	kv3Create(t, s, alice, "second")
	kv3Create(t, s, bob, "third")
	_, err := s.UpdateKeyV3(ctx, alice, a.KeyTag(), nkms.KeyPatch{Name: kv3Ptr("SECOND")})
	wantErr(t, err, nkms.ErrNameConflict)
	if _, err := s.UpdateKeyV3(ctx, alice, a.KeyTag(), nkms.KeyPatch{Name: kv3Ptr("third")}); err != nil {
		t.Fatal(err)
	}
}
