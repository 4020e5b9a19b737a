package nkms_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

func kv3Ptr[T any](v T) *T { return &v }

// TestUpdateRotationV3 is §3.1.9 as a table: enabled first, then periodDays
// only if rotation is on afterwards; periodDays as §3.1.8 reads it; an
// ENABLE key only.
func TestUpdateRotationV3(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	base := now.Add(-time.Hour)
	on := func(period int) nkms.Key {
		return nkms.Key{State: nkms.StateEnable, AutoRotation: true, RotationPeriod: period, RotationBase: base}
	}
	off := func(period int, kept bool) nkms.Key {
		return nkms.Key{State: nkms.StateEnable, RotationPeriod: period, RotationPeriodKept: kept}
	}
	for _, tc := range []struct {
		name       string
		key        nkms.Key
		patch      nkms.RotationPatch
		wantCode   nkms.Code
		wantOn     bool
		wantPeriod int // PeriodDaysV3 afterwards
		wantBase   time.Time
	}{
		{"off through 3.0 keeps the period", on(30), nkms.RotationPatch{Enabled: kv3Ptr(false)}, "", false, 30, time.Time{}},
		{"on again uses the kept period", off(30, true), nkms.RotationPatch{Enabled: kv3Ptr(true)}, "", true, 30, now},
		{"on after 2.0 off: default", off(30, false), nkms.RotationPatch{Enabled: kv3Ptr(true)}, "", true, 90, now},
		{"on with a period", off(30, false), nkms.RotationPatch{Enabled: kv3Ptr(true), PeriodDays: kv3Ptr(7)}, "", true, 7, now},
		{"on while on: the base stays", on(30), nkms.RotationPatch{Enabled: kv3Ptr(true)}, "", true, 30, base},
		{"period while on: the base stays", on(30), nkms.RotationPatch{PeriodDays: kv3Ptr(12)}, "", true, 12, base},
		{"off while off: nothing kept", off(90, false), nkms.RotationPatch{Enabled: kv3Ptr(false)}, "", false, 0, time.Time{}},
		{"off with a period", on(30), nkms.RotationPatch{Enabled: kv3Ptr(false), PeriodDays: kv3Ptr(7)}, nkms.Invalid, true, 30, base},
		{"period on an off key", off(30, true), nkms.RotationPatch{PeriodDays: kv3Ptr(7)}, nkms.Invalid, false, 30, time.Time{}},
		{"period 0", on(30), nkms.RotationPatch{PeriodDays: kv3Ptr(0)}, nkms.Invalid, true, 30, base},
		{"period 731", on(30), nkms.RotationPatch{PeriodDays: kv3Ptr(731)}, nkms.Invalid, true, 30, base},
		{"period 730", on(30), nkms.RotationPatch{PeriodDays: kv3Ptr(730)}, "", true, 730, base},
		{"disabled key", nkms.Key{State: nkms.StateDisable, AutoRotation: true, RotationPeriod: 30, RotationBase: base},
			nkms.RotationPatch{Enabled: kv3Ptr(false)}, nkms.InvalidState, true, 30, base},
		{"revoked key", nkms.Key{State: nkms.StateRevoke, RotationPeriod: 30},
			nkms.RotationPatch{Enabled: kv3Ptr(true)}, nkms.InvalidState, false, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.key
			err := k.UpdateRotationV3(tc.patch, now)
			if got := nkms.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("error %v (code %q), want code %q", err, got, tc.wantCode)
			}
			if k.AutoRotation != tc.wantOn || k.PeriodDaysV3() != tc.wantPeriod || !k.RotationBase.Equal(tc.wantBase) {
				t.Errorf("got on=%v periodDays=%d base=%v, want on=%v periodDays=%d base=%v",
					k.AutoRotation, k.PeriodDaysV3(), k.RotationBase, tc.wantOn, tc.wantPeriod, tc.wantBase)
			}
		})
	}
}

// TestRotationPeriodKeptCleared: the 2.0 transitions forget that 3.0 kept
// the period (turned off through 2.0 reads 0, §3.1.8).
func TestRotationPeriodKeptCleared(t *testing.T) {
	t.Parallel()
	k := nkms.Key{State: nkms.StateEnable, AutoRotation: true, RotationPeriod: 30}
	if err := k.UpdateRotationV3(nkms.RotationPatch{Enabled: kv3Ptr(false)}, t0); err != nil || k.PeriodDaysV3() != 30 {
		t.Fatalf("3.0 off: %v, periodDays %d", err, k.PeriodDaysV3())
	}
	if err := k.DisableAutoRotation(); err != nil || k.PeriodDaysV3() != 0 || k.RotationPeriod != 30 {
		t.Fatalf("2.0 off after 3.0 off: %v, periodDays %d, 2.0 period %d; want 0 and 30", err, k.PeriodDaysV3(), k.RotationPeriod)
	}
	if err := k.EnableAutoRotation(t0); err != nil || k.RotationPeriodKept {
		t.Fatalf("2.0 on: %v, kept %v", err, k.RotationPeriodKept)
	}
}

func TestUpdateV3(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		state nkms.State
		patch nkms.KeyPatch
		want  error // a sentinel or a code-only *Error
		check func(k nkms.Key) bool
	}{
		{"rename", nkms.StateEnable, nkms.KeyPatch{Name: kv3Ptr("other")}, nil, func(k nkms.Key) bool { return k.Name == "other" }},
		{"own name", nkms.StateEnable, nkms.KeyPatch{Name: kv3Ptr("Orders")}, nkms.ErrNameConflict, nil},
		{"bad name", nkms.StateEnable, nkms.KeyPatch{Name: kv3Ptr("9x")}, &nkms.Error{Code: nkms.Invalid}, nil},
		{"memo sanitised", nkms.StateEnable, nkms.KeyPatch{Memo: kv3Ptr("<p>hi</p> 👋🏽")}, nil, func(k nkms.Key) bool { return k.Memo == "hi " }},
		{"memo cleared", nkms.StateEnable, nkms.KeyPatch{ClearMemo: true}, nil, func(k nkms.Key) bool { return k.Memo == "" }},
		{"memo empty", nkms.StateEnable, nkms.KeyPatch{Memo: kv3Ptr("")}, &nkms.Error{Code: nkms.Invalid}, nil},
		{"disable", nkms.StateEnable, nkms.KeyPatch{Status: kv3Ptr(nkms.StateDisable)}, nil,
			func(k nkms.Key) bool { return k.State == nkms.StateDisable && k.StatusDate.Equal(now) }},
		{"enable a disabled key and rename it", nkms.StateDisable, nkms.KeyPatch{Status: kv3Ptr(nkms.StateEnable), Name: kv3Ptr("again")}, nil,
			func(k nkms.Key) bool { return k.State == nkms.StateEnable && k.Name == "again" }},
		{"rename a disabled key", nkms.StateDisable, nkms.KeyPatch{Name: kv3Ptr("again")}, nil, func(k nkms.Key) bool { return k.Name == "again" }},
		{"status REVOKE", nkms.StateEnable, nkms.KeyPatch{Status: kv3Ptr(nkms.StateRevoke)}, &nkms.Error{Code: nkms.Invalid}, nil},
		{"revoked key", nkms.StateRevoke, nkms.KeyPatch{Memo: kv3Ptr("x")}, nkms.ErrInvalidStatus, nil},
		{"revoked key status", nkms.StateRevoke, nkms.KeyPatch{Status: kv3Ptr(nkms.StateEnable)}, nkms.ErrInvalidStatus, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := nkms.Key{Name: "orders", Memo: "m", State: tc.state, StatusDate: t0}
			before := k
			err := k.UpdateV3(tc.patch, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err != nil && (k.Name != before.Name || k.Memo != before.Memo || k.State != before.State) {
				t.Errorf("a refused patch changed the key: %+v", k)
			}
			if tc.check != nil && !tc.check(k) {
				t.Errorf("got %+v", k)
			}
		})
	}
}

func TestSanitizeMemo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"payment data key":            "payment data key",
		"<b>bold</b> text":            "bold text",
		"a < b and c > d":             "a < b and c > d",
		"<script>alert(1)</script>ok": "alert(1)ok",
		"<!-- note -->x":              "x",
		"key 🔑 for 👨‍👩‍👧 family 🇰🇷": "key  for  family ",
		"한글 메모 ✅":     "한글 메모 ",
		"1️⃣ first":   "1 first",
		"unclosed <b": "unclosed <b",
	} {
		if got := nkms.SanitizeMemo(in); got != want {
			t.Errorf("SanitizeMemo(%q) = %q, want %q", in, got, want)
		}
	}
}
