package nkms_test

import (
	"testing"
	"time"

	"github.com/nkms/nkms"
)

func TestRefusalActivity(t *testing.T) {
	t.Parallel()
	viewer := nkms.Caller{AccessKey: "NKviewer", Keystore: 1, Role: nkms.RoleViewer, IP: "192.0.2.7"}
	a := nkms.RefusalActivity("tag", t0, viewer, "Encrypt", "210")
	want := nkms.Activity{Tag: "tag", Time: t0, RequestType: nkms.RequestAPI, Requestor: "NKviewer", IP: "192.0.2.7",
		Result: nkms.ResultFail, Action: "Encrypt", AuthType: nkms.AuthAccount, Message: "210", Refused: true, Count: 1}
	if a != want {
		t.Errorf("RefusalActivity = %+v, want %+v", a, want)
	}
	viewer.Token = true
	if a := nkms.RefusalActivity("tag", t0, viewer, "Decrypt", "FORBIDDEN"); a.AuthType != nkms.AuthToken || a.Message != "FORBIDDEN" {
		t.Errorf("a token call's refusal: auth type %q, message %q; want TOKEN, FORBIDDEN", a.AuthType, a.Message)
	}
}

func TestAddRefusals(t *testing.T) {
	t.Parallel()
	c := nkms.Caller{AccessKey: "NKviewer", IP: "192.0.2.7"}
	a := nkms.RefusalActivity("tag", t0, c, "Encrypt", "210")
	b := nkms.RefusalActivity("tag", t0.Add(time.Second), c, "Encrypt", "210")
	a.AddRefusals(&b)
	if a.Count != 2 || a.Calls() != 2 || a.Message != "210 (x2)" || !a.Time.Equal(t0) {
		t.Errorf("after one more: count %d, calls %d, message %q, time %v; want 2, 2, \"210 (x2)\", the first's", a.Count, a.Calls(), a.Message, a.Time)
	}
	many := b
	many.Count, many.Message = 35, "210 (x35)"
	a.AddRefusals(&many)
	if a.Count != 37 || a.Message != "210 (x37)" {
		t.Errorf("after 35 more: count %d, message %q; want 37, \"210 (x37)\"", a.Count, a.Message)
	}
	if a.RefusalGroup() != b.RefusalGroup() {
		t.Errorf("the count changed the group: %+v, want %+v", a.RefusalGroup(), b.RefusalGroup())
	}
	var zero nkms.Activity // an entry of before refusals were counted
	zero.Refused, zero.Message = true, "210"
	zero.AddRefusals(&nkms.Activity{})
	if zero.Count != 2 || zero.Message != "210 (x2)" {
		t.Errorf("count 0 plus count 0: count %d, message %q; want 2 (each is one call)", zero.Count, zero.Message)
	}
	if ordinary := (nkms.Activity{}); ordinary.Calls() != 1 {
		t.Errorf("Calls of an ordinary entry = %d, want 1", ordinary.Calls())
	}
}

func TestRefusalGroup(t *testing.T) {
	t.Parallel()
	minute := t0.Add(5 * time.Minute) // t0 starts a minute
	base := nkms.RefusalActivity("tag", minute, nkms.Caller{AccessKey: "NKviewer", IP: "192.0.2.7"}, "Encrypt", "210")
	at := func(d time.Duration, set func(*nkms.Activity)) nkms.Activity {
		a := base
		a.Time = minute.Add(d)
		set(&a)
		return a
	}
	same := func(*nkms.Activity) {}
	for _, tc := range []struct {
		name string
		a    nkms.Activity
		same bool
	}{
		{"the same instant", at(0, same), true},
		{"the minute's last nanosecond", at(time.Minute-1, same), true},
		{"the next minute", at(time.Minute, same), false},
		{"the minute before", at(-1, same), false},
		{"another zone, the same instant", at(30*time.Second, func(a *nkms.Activity) { a.Time = a.Time.In(time.FixedZone("X", 5*3600+1800)) }), true},
		{"a key name changed", at(time.Second, func(a *nkms.Activity) { a.KeyName = "renamed" }), true},
		{"another key", at(0, func(a *nkms.Activity) { a.Tag = "other" }), false},
		{"another requestor", at(0, func(a *nkms.Activity) { a.Requestor = "NKother" }), false},
		{"another address", at(0, func(a *nkms.Activity) { a.IP = "192.0.2.8" }), false},
		{"another action", at(0, func(a *nkms.Activity) { a.Action = "Decrypt" }), false},
		{"another auth type", at(0, func(a *nkms.Activity) { a.AuthType = nkms.AuthToken }), false},
		{"another code", at(0, func(a *nkms.Activity) { a.Message = "FORBIDDEN" }), false},
	} {
		if got := tc.a.RefusalGroup() == base.RefusalGroup(); got != tc.same {
			t.Errorf("%s: same group = %v, want %v", tc.name, got, tc.same)
		}
	}
}

func TestRefusalsPerKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ maxPerKey, want int }{
		{-1, 0}, {0, 0}, {1, 1}, {50, 50}, {nkms.MaxRefusalsPerKey, nkms.MaxRefusalsPerKey},
		{nkms.DefaultActivityPerKey, nkms.MaxRefusalsPerKey},
	} {
		if got := nkms.RefusalsPerKey(tc.maxPerKey); got != tc.want {
			t.Errorf("RefusalsPerKey(%d) = %d, want %d", tc.maxPerKey, got, tc.want)
		}
	}
}
