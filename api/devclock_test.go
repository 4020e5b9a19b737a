package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

// newDevEnv is newEnv for a server run with --dev-clock: the Service's
// clock is a DevClock over e.clk, and the HTTP layer (signatures, audit)
// keeps e.clk itself as its wall clock, as internal/server wires it.
func newDevEnv(t *testing.T) (*env, *nkms.DevClock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	dev, err := nkms.NewDevClock(clk.Now, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	log := newLogger(logs)
	svc := &nkms.Service{Store: mem.New(), Root: testkit.RootKey(t), Now: dev.Now, DevClock: dev,
		DeletionWindow: nkms.DefaultDeletionWindow, Log: log}
	e := &env{t: t, svc: svc, clk: clk, creds: map[int64]*nkms.Credentials{}, logs: logs}
	e.srv = httptest.NewServer(api.New(svc, api.Config{PublicURL: "https://kms.example", Log: log})) // Now: the DevClock's wall clock
	t.Cleanup(e.srv.Close)
	ctx := context.Background()
	first, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.creds[1] = first
	admin := nkms.Caller{AccessKey: first.AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	if e.creds[2], err = svc.CreateAccessKey(ctx, admin, 2, nkms.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if e.creds[3], err = svc.CreateAccessKey(ctx, admin, 1, nkms.RoleManager); err != nil { // keystore 1, not an admin
		t.Fatal(err)
	}
	return e, dev
}

// wantStatus fails unless err is a *client.Error with this status and code
// (KMS-style) or errorCode (gateway-style).
func wantStatus(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status || (ce.Code != code && ce.ErrorCode != code) {
		t.Fatalf("got %v, want HTTP %d %s", err, status, code)
	}
}

// TestDevClockDeletion: request deletion of a key, advance the clock 72h,
// and the key is gone before the answer; the signed requests after the
// advance still authenticate (the signature window keeps the wall clock).
func TestDevClockDeletion(t *testing.T) {
	t.Parallel()
	e, _ := newDevEnv(t)
	ctx := context.Background()
	kms := e.client(1)
	k, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "doomed", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "kept", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kms.RequestDeletion(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	c, err := kms.AdvanceClock(ctx, 71*time.Hour+59*time.Minute)
	if err != nil || c.Destroyed != 0 {
		t.Fatalf("advance 71h59m: %+v, %v; want nothing destroyed", c, err)
	}
	c, err = kms.AdvanceClock(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := client.Clock{Now: t0.Add(72 * time.Hour), Offset: 72 * time.Hour, Destroyed: 1}
	if *c != want {
		t.Fatalf("advance: got %+v, want %+v", *c, want)
	}
	_, err = kms.GetKey(ctx, k.KeyTag)
	wantStatus(t, err, 404, "NOT_FOUND")
	if _, err := kms.Encrypt(ctx, keep.KeyTag, []byte("still here"), nil); err != nil {
		t.Fatalf("a signed request right after the advance: %v", err)
	}
	got, err := e.client(2).DevClock(ctx) // any access key may read the clock
	if err != nil || !got.Now.Equal(t0.Add(72*time.Hour)) || got.Offset != 72*time.Hour {
		t.Fatalf("GET clock: %+v, %v", got, err)
	}
}

// TestDevClockRotation: a key with auto rotation every 30 days; advancing
// past the period makes version 2 before the answer, and the next rotation
// date moves a period past the moved clock.
func TestDevClockRotation(t *testing.T) {
	t.Parallel()
	e, _ := newDevEnv(t)
	ctx := context.Background()
	kms := e.client(1)
	k, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rotating", KeyType: "AES256", IsAutoRotation: true, RotationPeriod: 30})
	if err != nil {
		t.Fatal(err)
	}
	period := 30 * 24 * time.Hour
	if k.NextRotationDate == nil || *k.NextRotationDate != t0.Add(period).UnixMilli() {
		t.Fatalf("nextRotationDate %v, want %d", k.NextRotationDate, t0.Add(period).UnixMilli())
	}
	c, err := kms.AdvanceClock(ctx, period+time.Hour)
	if err != nil || c.Rotated != 1 || c.Destroyed != 0 || c.Failed != 0 {
		t.Fatalf("advance 30 days: %+v, %v; want one rotation", c, err)
	}
	vs, err := kms.ListVersions(ctx, k.KeyTag)
	if err != nil || vs.CurrentVersion != 2 || len(vs.VersionList) != 2 {
		t.Fatalf("versions: %+v, %v; want version 2", vs, err)
	}
	info, err := kms.GetKey(ctx, k.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(2*period + time.Hour).UnixMilli(); info.NextRotationDate == nil || *info.NextRotationDate != want {
		t.Fatalf("nextRotationDate after the rotation %v, want %d", info.NextRotationDate, want)
	}
}

// TestDevClockDates: the dates the API answers come from the moved clock:
// statusDate and destroyDate of a deletion, and a token's expiry.
func TestDevClockDates(t *testing.T) {
	t.Parallel()
	e, _ := newDevEnv(t)
	ctx := context.Background()
	kms := e.client(1)
	k, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "dated", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kms.CreateTokenGenerator(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	set, err := kms.CreateTokenSet(ctx, k.KeyTag, 1, 0) // an access token for one hour
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client.NewWithToken(e.srv.URL, set.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encrypt(ctx, k.KeyTag, []byte("x"), nil); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	if _, err := kms.AdvanceClock(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err = tok.Encrypt(ctx, k.KeyTag, []byte("x"), nil)
	wantStatus(t, err, 401, "200") // expired an hour after issue, by the moved clock
	st, err := kms.RequestDeletion(ctx, k.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(24 * time.Hour).UnixMilli(); st.StatusDate != want {
		t.Fatalf("statusDate %d, want %d (the moved clock)", st.StatusDate, want)
	}
	info, err := kms.GetKey(ctx, k.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(96 * time.Hour).UnixMilli(); info.DestroyDate == nil || *info.DestroyDate != want {
		t.Fatalf("destroyDate %v, want %d", info.DestroyDate, want)
	}
}

// TestDevClockRefusals: callers other than an operator get the role refusal
// of D10 (401, errorCode 210), and the clock does not move; bad bodies are
// 400 INVALID_REQUEST and move nothing either.
func TestDevClockRefusals(t *testing.T) {
	t.Parallel()
	e, dev := newDevEnv(t)
	ctx := context.Background()
	for _, ks := range []int64{2, 3} { // an admin of keystore 2; a manager of keystore 1
		_, err := e.client(ks).AdvanceClock(ctx, time.Hour)
		wantStatus(t, err, 401, "210")
	}
	for _, body := range []string{
		``, `{}`, `{"advance":null}`, `{"advance":72}`, `{"advance":""}`, `{"advance":"0s"}`, `{"advance":"0"}`,
		`{"advance":"-1h"}`, `{"advance":"3d"}`, `{"advance":"72 h"}`, `{"advance":"abc"}`,
		`{"advance":"876001h"}`, `{"advance":"99999999999999h"}`, `{"advance":"1h"} x`, `not json`, `["1h"]`,
	} {
		status, b := e.raw("POST", "/nkms/v1/dev/clock", body)
		if status != 400 || !strings.Contains(string(b), `"code":"INVALID_REQUEST"`) {
			t.Errorf("body %q: HTTP %d %s, want 400 INVALID_REQUEST", body, status, b)
		}
	}
	status, b := e.raw("POST", "/nkms/v1/dev/clock", `{"advance":"`+strings.Repeat("1", 20<<10)+`h"}`)
	if status != 413 {
		t.Errorf("a body over the limit: HTTP %d %s, want 413", status, b)
	}
	if dev.Offset() != 0 {
		t.Fatalf("refused requests moved the clock by %v", dev.Offset())
	}
}

// TestDevClockGolden pins the answers of the dev clock routes.
func TestDevClockGolden(t *testing.T) {
	t.Parallel()
	e, _ := newDevEnv(t)
	e.call("dev_clock_get", "GET", "/nkms/v1/dev/clock", "")
	e.call("dev_clock_advance", "POST", "/nkms/v1/dev/clock", `{"advance":"72h"}`)
	e.call("dev_clock_bad_advance", "POST", "/nkms/v1/dev/clock", `{"advance":"3d"}`)
	e.call("dev_clock_negative_advance", "POST", "/nkms/v1/dev/clock", `{"advance":"-1h"}`)
}

// TestDevClockRouteNeedsDevClock: without a DevClock (nkms server without
// --dev-clock) the route does not exist: 404 with the gateway body.
func TestDevClockRouteNeedsDevClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.call("dev_clock_without_flag", "POST", "/nkms/v1/dev/clock", `{"advance":"72h"}`)
	_, err := e.client(1).DevClock(context.Background())
	wantStatus(t, err, 404, "300")
}
