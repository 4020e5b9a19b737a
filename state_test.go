package nkms

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func keyIn(s State) *Key {
	k := &Key{Tag: "t", State: s, StatusDate: t0, RotationPeriod: DefaultRotationPeriod,
		Versions: []Version{{Number: 1, State: StateEnable}, {Number: 2, State: StateEnable}}}
	if s == StateRevoke {
		k.DestroyDate = t0.Add(DefaultDeletionWindow)
	}
	return k
}

// TestStateTable is decisions.md D6: every state × operation, with the
// resulting state or the refusal.
func TestStateTable(t *testing.T) {
	now := t0.Add(time.Hour)
	ops := map[string]func(k *Key) error{
		"enable":            func(k *Key) error { return k.Enable(now) },
		"disable":           func(k *Key) error { return k.Disable(now) },
		"request-deletion":  func(k *Key) error { return k.RequestDeletion(now, time.Hour) },
		"cancel-deletion":   func(k *Key) error { return k.CancelDeletion(now) },
		"delete":            func(k *Key) error { return k.CheckDelete() },
		"rotate":            func(k *Key) error { _, err := k.Rotate(now, []byte("m")); return err },
		"disable-version":   func(k *Key) error { _, err := k.SetVersionState(1, StateDisable, now); return err },
		"enable-version":    func(k *Key) error { _, err := k.SetVersionState(1, StateEnable, now); return err },
		"name":              func(k *Key) error { return k.SetName("other-name") },
		"memo":              func(k *Key) error { return k.SetMemo("m") },
		"auto-rotation-on":  func(k *Key) error { return k.EnableAutoRotation(now) },
		"auto-rotation-off": func(k *Key) error { return k.DisableAutoRotation() },
		"crypto":            func(k *Key) error { _, err := k.CryptoVersion(1); return err },
	}
	// want: the state after the operation, or "422" for ErrInvalidStatus.
	want := map[string][3]string{ //        ENABLE     DISABLE    REVOKE
		"enable":            {"ENABLE", "ENABLE", "422"},
		"disable":           {"DISABLE", "DISABLE", "422"},
		"request-deletion":  {"REVOKE", "REVOKE", "422"},
		"cancel-deletion":   {"422", "422", "DISABLE"},
		"delete":            {"ENABLE+422", "DISABLE+422", "REVOKE"},
		"rotate":            {"ENABLE", "422", "422"},
		"disable-version":   {"ENABLE", "422", "422"},
		"enable-version":    {"ENABLE", "422", "422"},
		"name":              {"ENABLE", "DISABLE", "422"},
		"memo":              {"ENABLE", "DISABLE", "422"},
		"auto-rotation-on":  {"ENABLE", "DISABLE", "422"},
		"auto-rotation-off": {"ENABLE", "DISABLE", "422"},
		"crypto":            {"ENABLE", "422", "422"},
	}
	for name, op := range ops {
		for i, s := range []State{StateEnable, StateDisable, StateRevoke} {
			t.Run(name+"/"+string(s), func(t *testing.T) {
				k := keyIn(s)
				err := op(k)
				w := want[name][i]
				switch {
				case w == "422" || w == string(s)+"+422":
					if !errors.Is(err, ErrInvalidStatus) {
						t.Fatalf("got err %v, want ErrInvalidStatus", err)
					}
					if k.State != s {
						t.Fatalf("refused op changed state to %s", k.State)
					}
				default:
					if err != nil {
						t.Fatalf("got err %v, want state %s", err, w)
					}
					if string(k.State) != w {
						t.Fatalf("got state %s, want %s", k.State, w)
					}
				}
			})
		}
	}
}

func TestRequestAndCancelDeletionDates(t *testing.T) {
	k := keyIn(StateEnable)
	if err := k.RequestDeletion(t0, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	if !k.StatusDate.Equal(t0) || !k.DestroyDate.Equal(t0.Add(72*time.Hour)) {
		t.Fatalf("got statusDate %v destroyDate %v", k.StatusDate, k.DestroyDate)
	}
	if due, ok := k.DueAt(); !ok || !due.Equal(k.DestroyDate) {
		t.Fatalf("DueAt = %v %v, want destroyDate", due, ok)
	}
	if err := k.CheckPurge(t0.Add(72*time.Hour - time.Millisecond)); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("purge before the window: got %v, want ErrInvalidStatus", err)
	}
	if err := k.CheckPurge(t0.Add(72 * time.Hour)); err != nil {
		t.Fatalf("purge at the window: %v", err)
	}
	if err := k.CancelDeletion(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k.State != StateDisable || !k.DestroyDate.IsZero() {
		t.Fatalf("after cancel: state %s destroyDate %v", k.State, k.DestroyDate)
	}
	if err := k.CheckPurge(t0.Add(100 * time.Hour)); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("purge after cancel: got %v, want ErrInvalidStatus", err)
	}
}

func TestVersionRules(t *testing.T) {
	k := keyIn(StateEnable)
	if _, err := k.SetVersionState(2, StateDisable, t0); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("disable current version: got %v, want ErrInvalidStatus", err)
	}
	if _, err := k.SetVersionState(3, StateDisable, t0); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("unknown version: got %v, want ErrVersionNotFound", err)
	}
	if _, err := k.SetVersionState(1, StateDisable, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := k.CryptoVersion(1); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("crypto with disabled version: got %v, want ErrInvalidStatus", err)
	}
	if _, err := k.CryptoVersion(2); err != nil {
		t.Fatalf("crypto with current version: %v", err)
	}
	n, err := k.Rotate(t0, []byte("m"))
	if err != nil || n != 3 || k.Current() != 3 {
		t.Fatalf("rotate: n=%d current=%d err=%v", n, k.Current(), err)
	}
}

func TestAutoRotation(t *testing.T) {
	k := keyIn(StateDisable)
	if err := k.SetRotationPeriod(30); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("period while auto rotation off: got %v, want ErrInvalidStatus", err)
	}
	if _, ok := k.NextRotation(); ok {
		t.Fatal("next rotation while off")
	}
	if err := k.EnableAutoRotation(t0); err != nil {
		t.Fatal(err)
	}
	if err := k.SetRotationPeriod(30); err != nil {
		t.Fatal(err)
	}
	next, ok := k.NextRotation()
	if !ok || !next.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("next rotation %v %v", next, ok)
	}
	// Manual rotation does not move the next auto rotation (and a DISABLE key cannot rotate manually).
	if _, err := k.AutoRotate(next.Add(-time.Millisecond), []byte("m")); !errors.Is(err, ErrInvalidStatus) {
		t.Fatalf("auto rotate before due: %v", err)
	}
	if n, err := k.AutoRotate(next, []byte("m")); err != nil || n != 3 {
		t.Fatalf("auto rotate a DISABLE key when due: n=%d err=%v", n, err)
	}
	if again, _ := k.NextRotation(); !again.Equal(next.Add(30 * 24 * time.Hour)) {
		t.Fatalf("next rotation after auto rotation: %v", again)
	}
	if err := k.DisableAutoRotation(); err != nil {
		t.Fatal(err)
	}
	if k.RotationPeriod != 30 {
		t.Fatalf("period after disabling: %d, want it kept", k.RotationPeriod)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"abc", true}, {"a-_9", true}, {"Abcdefghijklmno", true},
		{"ab", false}, {"1abc", false}, {"abcdefghijklmnop", false}, {"ab c", false}, {"_abc", false}, {"abç", false},
	} {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if got, err := ParseTag("ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"); err != nil ||
		got.String() != "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789" {
		t.Errorf("upper-case tag: got %q, %v", got, err)
	}
	for _, bad := range []string{"../etc", "", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 65)} {
		if _, err := ParseTag(bad); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("ParseTag(%q): got %v, want ErrKeyNotFound", bad, err)
		}
	}
}
