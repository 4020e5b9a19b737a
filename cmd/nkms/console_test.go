package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/console"
)

// TestConsoleHeaders: the console is served from the binary with a strict
// Content-Security-Policy and no caching of index.html.
func TestConsoleHeaders(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv)
	for _, tc := range []struct {
		path, contentType, cache string
	}{
		{"/console/", "text/html", "no-store"},
		{"/console/app.js", "text/javascript", "no-cache"},
		{"/console/api.js", "text/javascript", "no-cache"},
		{"/console/app.css", "text/css", "no-cache"},
	} {
		resp, err := http.Get(p.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Errorf("GET %s: %d, %d bytes; want 200 and a body", tc.path, resp.StatusCode, len(body))
		}
		h := resp.Header
		for name, want := range map[string]string{
			"Content-Security-Policy": console.ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           tc.cache,
		} {
			if got := h.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, name, got, want)
			}
		}
		if got := h.Get("Content-Type"); !strings.HasPrefix(got, tc.contentType) {
			t.Errorf("GET %s: Content-Type = %q, want %s", tc.path, got, tc.contentType)
		}
		if tc.path == "/console/" && (strings.Contains(string(body), "http://") || strings.Contains(string(body), "https://")) {
			t.Errorf("index.html names an absolute URL:\n%s", body)
		}
	}
}

// TestConsoleBrowser drives the console in headless chromium against the
// real binary: sign-in (wrong secret first), create a key, encrypt and
// decrypt in the playground, rotate, request deletion with the typed name
// and a live countdown, cancel it; a screenshot of each page; every action
// checked on the server through the Go client.
func TestConsoleBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	t.Parallel()
	began := time.Now()
	ctx := context.Background()
	p := start(t, t.TempDir(), credEnv)
	c := adminClient(t, p)
	b := newBrowser(t, chrome, screenshotDir(t))
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Sign-in page.
	b.do("open the console",
		chromedp.Navigate(p.URL+"/console/"),
		chromedp.WaitVisible(css("#signin-form")))
	b.shot("signin.png", false)

	// A wrong secret: an error in words, no key list.
	b.do("sign in with a wrong secret",
		chromedp.SendKeys(css("#signin-access-key"), testAccessKey),
		chromedp.SendKeys(css("#signin-secret-key"), "not-the-secret"),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#alert")))
	if msg := b.text("#alert-text"); !strings.Contains(msg, "Authentication Failed") ||
		!strings.Contains(msg, "secret key is wrong") || !strings.Contains(msg, "401") {
		t.Errorf("wrong secret: alert %q, want the API's message, the status and a sentence about bad credentials", msg)
	}
	if b.eval(`document.querySelector('#key-list, #key-table') !== null`) {
		t.Error("wrong secret: a key list is shown")
	}
	b.shot("signin-error.png", false)

	// The right secret.
	// SetValue(…, "") fails in chromedp v0.23 (it reads back the value and
	// takes "" for a failure), so clear the field with a script.
	b.do("sign in",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('signin-secret-key').value = ''`),
		chromedp.SendKeys(css("#signin-secret-key"), testSecretKey),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#key-list")))
	if b.eval(`!document.getElementById('alert').hidden`) {
		t.Errorf("signed in, yet an error is shown: %q", b.text("#alert-text"))
	}
	if b.eval(`localStorage.length + sessionStorage.length > 0 || document.cookie !== ''`) {
		t.Error("the console stored something in localStorage, sessionStorage or a cookie")
	}

	// Create a key.
	const name = "console-e2e"
	b.do("open create key",
		chromedp.Click(css("#nav-create")),
		chromedp.WaitVisible(css("#create-form")),
		chromedp.SendKeys(css("#create-name"), name),
		chromedp.SendKeys(css("#create-memo"), "made by the browser test"),
		chromedp.Click(css("#create-auto")))
	b.shot("create-key.png", true)
	b.do("create the key",
		chromedp.Click(css("#create-submit")),
		chromedp.WaitVisible(css("#key-detail")))
	tag := b.attr("#key-detail", "data-tag")
	if got := b.text("#notice"); !strings.Contains(got, "created") {
		t.Errorf("after create: notice %q, want it to say the key was created", got)
	}
	k, err := c.GetKey(ctx, tag)
	if err != nil {
		t.Fatalf("the created key is not on the server: %v", err)
	}
	if k.KeyName != name || k.KeyType != "AES256" || !k.IsAutoRotation || k.RotationPeriod != 90 || k.Memo != "made by the browser test" || k.Status != "ENABLE" {
		t.Errorf("created key = %+v, want %s AES256, auto rotation every 90 days, the memo, ENABLE", k, name)
	}

	// Playground: encrypt, then decrypt.
	const plain = "héllo from chromium ✓ 🔑"
	b.do("encrypt in the playground",
		chromedp.Click(css("#open-playground")),
		chromedp.WaitVisible(css("#pg-encrypt-form")),
		chromedp.SetValue(css("#pg-plaintext"), plain),
		chromedp.Click(css("#pg-encrypt")),
		chromedp.WaitVisible(css("#pg-ciphertext")))
	ct := b.value("#pg-ciphertext")
	if !strings.HasPrefix(ct, "ncpkms:v1:") {
		t.Fatalf("ciphertext %q, want ncpkms:v1:...", ct)
	}
	b.do("decrypt in the playground",
		chromedp.Click(css("#pg-decrypt")),
		chromedp.WaitVisible(css("#pg-decrypted")))
	if got := b.text("#pg-decrypted"); got != plain {
		t.Errorf("decrypted %q, want %q", got, plain)
	}
	if got, err := c.Decrypt(ctx, tag, ct, nil); err != nil || string(got) != plain {
		t.Errorf("Go client decrypts the browser's ciphertext to %q, %v; want %q", got, err, plain)
	}
	b.shot("playground.png", true)

	// Rotate: version 2.
	b.do("rotate",
		chromedp.Click(css("#pg-back")),
		chromedp.WaitVisible(css("#key-detail")),
		chromedp.Click(css("#rotate-key")),
		chromedp.WaitVisible(css(`#key-detail[data-version="2"]`)))
	if got := b.text("#info-version"); got != "2" {
		t.Errorf("current version shown %q, want 2", got)
	}
	if k, err := c.GetKey(ctx, tag); err != nil || k.CurrentVersion != 2 {
		t.Errorf("after rotate on the server: %+v, %v; want current version 2", k, err)
	}
	b.shot("key-detail.png", true)

	// Request deletion: the confirm button waits for the typed name.
	b.do("open the deletion dialog",
		chromedp.Click(css("#request-deletion")),
		chromedp.WaitVisible(css("#danger-dialog")))
	if !b.eval(`document.getElementById('danger-confirm').disabled`) {
		t.Error("deletion dialog: confirm enabled before the name is typed")
	}
	if body := b.text("#danger-body"); !strings.Contains(body, "72 hours") {
		t.Errorf("deletion dialog says %q, want it to explain the 72-hour window", body)
	}
	b.do("type a wrong name", chromedp.SendKeys(css("#danger-input"), name[:5]))
	if !b.eval(`document.getElementById('danger-confirm').disabled`) {
		t.Error("deletion dialog: confirm enabled with a partial name")
	}
	b.do("type the name",
		chromedp.SendKeys(css("#danger-input"), name[5:]),
		chromedp.WaitEnabled(css("#danger-confirm")))
	b.shot("deletion-dialog.png", false)
	b.do("confirm the deletion",
		chromedp.Click(css("#danger-confirm")),
		chromedp.WaitVisible(css(`#key-detail[data-status="REVOKE"]`)),
		chromedp.WaitVisible(css("#deletion-banner .countdown")))
	if b.eval(`document.getElementById('danger-dialog').open`) {
		t.Error("deletion dialog still open after confirming")
	}
	countdownRE := regexp.MustCompile(`^destroyed in 71h 5[89]m \d+s$`)
	first := b.text("#deletion-banner .countdown")
	time.Sleep(1100 * time.Millisecond) // the one wait on the clock: the countdown ticks every second
	second := b.text("#deletion-banner .countdown")
	if !countdownRE.MatchString(first) || !countdownRE.MatchString(second) || first == second {
		t.Errorf("countdown %q then %q a second later; want two different texts matching %s", first, second, countdownRE)
	}
	if got := b.text("#notice"); !strings.Contains(got, "will be destroyed on") {
		t.Errorf("after requesting deletion: notice %q, want the destroy date", got)
	}
	k, err = c.GetKey(ctx, tag)
	if err != nil || k.Status != "REVOKE" || k.DestroyDate == nil {
		t.Fatalf("after request deletion on the server: %+v, %v; want REVOKE with a destroy date", k, err)
	}
	if left := time.Until(time.UnixMilli(*k.DestroyDate)); left < 71*time.Hour || left > 72*time.Hour {
		t.Errorf("destroy date in %v, want about 72h", left)
	}

	// Key list: the pending key with its countdown; wide and narrow.
	row := `#key-table tr[data-tag="` + tag + `"]`
	b.do("open the key list",
		chromedp.Click(css("#nav-keys")),
		chromedp.WaitVisible(css(row+" .countdown")))
	if got := b.text(row + " .countdown"); !countdownRE.MatchString(got) {
		t.Errorf("key list countdown %q, want %s", got, countdownRE)
	}
	if got := b.text(row); !strings.Contains(got, name) || !strings.Contains(got, "AES256") || !strings.Contains(got, "v2") {
		t.Errorf("key list row %q, want the name, type and current version v2", got)
	}
	b.shot("key-list.png", true)
	b.do("narrow screen",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.WaitVisible(css(row)))
	if b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Error("narrow screen: the page scrolls sideways; only tables should")
	}
	b.shot("key-list-narrow.png", false)
	b.do("wide screen again", chromedp.EmulateViewport(1280, 900))

	// Cancel the deletion.
	b.do("cancel the deletion",
		chromedp.Click(css(row+" th a")),
		chromedp.WaitVisible(css(`#key-detail[data-status="REVOKE"]`)),
		chromedp.Click(css("#cancel-deletion")),
		chromedp.WaitVisible(css(`#key-detail[data-status="DISABLE"]`)))
	if b.eval(`document.querySelector('#deletion-banner') !== null`) {
		t.Error("the deletion banner is still shown after cancelling")
	}
	k, err = c.GetKey(ctx, tag)
	if err != nil || k.Status != "DISABLE" || k.DestroyDate != nil || k.CurrentVersion != 2 {
		t.Errorf("after cancel on the server: %+v, %v; want DISABLE, no destroy date, version 2", k, err)
	}

	// Nothing from the network but the server itself; no CSP violations or script errors.
	reqs := b.pageRequests()
	if len(reqs) == 0 {
		t.Error("no requests recorded")
	}
	for _, u := range reqs {
		if !strings.HasPrefix(u, p.URL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s, not on %s", u, p.URL)
		}
	}
	for _, problem := range b.pageProblems() {
		t.Errorf("page problem: %s", problem)
	}
	b.checkScreenshots([]string{"signin.png", "signin-error.png", "create-key.png", "playground.png",
		"key-detail.png", "deletion-dialog.png", "key-list.png", "key-list-narrow.png"})
	t.Logf("browser test took %v (%d requests)", time.Since(began).Round(time.Millisecond), len(reqs))
}

// TestConsoleBrowserManage drives the rest of the key page in headless
// chromium: rename, memo, versions, rotation settings, IP ACL, token
// generator and token set, sign and verify, an API error in words, Escape
// on the dialog, delete now, and a reload that signs out.
func TestConsoleBrowserManage(t *testing.T) {
	chrome := chromiumPath(t)
	t.Parallel()
	ctx := context.Background()
	p := start(t, t.TempDir(), credEnv)
	c := adminClient(t, p)
	b := newBrowser(t, chrome, screenshotDir(t))
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "console-rsa", KeyType: "RSA2048", ProtectionType: "BASIC"})
	if err != nil {
		t.Fatal(err)
	}
	tag := k.KeyTag
	if _, err := c.Rotate(ctx, tag); err != nil {
		t.Fatal(err)
	}
	// A link to a key page opens it after sign-in.
	b.signIn(p.URL, "#/keys/"+tag, "#key-detail")

	// Rename and memo.
	b.do("rename",
		chromedp.SetValue(css("#rename-input"), "console-rsa2"),
		chromedp.Click(css("#rename-submit")),
		chromedp.WaitVisible(css(`#key-detail[data-name="console-rsa2"]`)))
	b.do("memo",
		chromedp.SetValue(css("#memo-input"), "memo from the console"),
		chromedp.Click(css("#memo-submit")))
	b.waitJS("memo", `document.getElementById('notice').textContent === 'Memo saved.'`)
	if k, err := c.GetKey(ctx, tag); err != nil || k.KeyName != "console-rsa2" || k.Memo != "memo from the console" {
		t.Errorf("after rename and memo on the server: %+v, %v", k, err)
	}

	// Versions: disable and enable v1; the current version cannot be disabled.
	if !b.eval(`document.getElementById('version-2-disable').disabled`) {
		t.Error("the current version's disable button is enabled")
	}
	b.do("disable v1", chromedp.Click(css("#version-1-disable")), chromedp.WaitVisible(css("#version-1-enable")))
	if vl, err := c.ListVersions(ctx, tag); err != nil || vl.VersionList[0].Status != "DISABLE" {
		t.Errorf("after disabling v1 on the server: %+v, %v", vl, err)
	}
	b.do("enable v1", chromedp.Click(css("#version-1-enable")), chromedp.WaitVisible(css("#version-1-disable")))

	// Rotation settings.
	b.do("auto rotation on", chromedp.Click(css("#auto-rotation-on")), chromedp.WaitVisible(css("#auto-rotation-off")))
	b.do("rotation period",
		chromedp.SetValue(css("#period-input"), "30"),
		chromedp.Click(css("#period-submit")))
	b.waitJS("rotation period", `document.getElementById('notice').textContent.includes('30 days')`)
	if k, err := c.GetKey(ctx, tag); err != nil || !k.IsAutoRotation || k.RotationPeriod != 30 {
		t.Errorf("after rotation settings on the server: %+v, %v", k, err)
	}

	// IP ACL: enable, add, remove, disable.
	b.do("acl enable", chromedp.Click(css("#acl-enable")), chromedp.WaitVisible(css("#acl-disable")))
	b.do("acl add",
		chromedp.SendKeys(css("#acl-ip"), "10.1.2.3"),
		chromedp.Click(css("#acl-add")),
		chromedp.WaitVisible(css(`#acl-list button[aria-label="Remove 10.1.2.3"]`)))
	if acl, err := c.GetACL(ctx, tag); err != nil || !acl.IsACLEnabled || len(acl.AllowedIPList) != 1 || acl.AllowedIPList[0] != "10.1.2.3" {
		t.Errorf("after enabling the ACL and adding an address on the server: %+v, %v", acl, err)
	}
	b.do("acl remove",
		chromedp.Click(css(`#acl-list button[aria-label="Remove 10.1.2.3"]`)),
		chromedp.WaitNotPresent(css("#acl-list")),
		chromedp.Click(css("#acl-disable")),
		chromedp.WaitVisible(css("#acl-enable")))

	// Token generator and a token set, shown once with copy buttons.
	b.do("token generator",
		chromedp.Click(css("#token-generator-create")),
		chromedp.WaitVisible(css("#token-set-form")),
		chromedp.SetValue(css("#token-access-hours"), "1"),
		chromedp.Click(css("#token-set-submit")),
		chromedp.WaitVisible(css("#token-access")))
	access := b.value("#token-access")
	if refresh := b.value("#token-refresh"); !strings.HasPrefix(access, "ey") || !strings.HasPrefix(refresh, "ey") {
		t.Errorf("tokens shown %q and %q, want two JWTs", access, refresh)
	}
	if !b.eval(`[...document.querySelectorAll('#token-output button')].some(b => b.textContent.startsWith('Copy'))`) {
		t.Error("no copy button next to the tokens")
	}
	b.shot("key-detail-tokens.png", true)
	tc, err := client.NewWithToken(p.URL, access)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Sign(ctx, tag, []byte("with the console's token")); err != nil {
		t.Errorf("the access token shown by the console does not work: %v", err)
	}

	// Replace the generator (a confirmation without a typed name): the token stops working. Then delete it.
	b.do("replace the token generator",
		chromedp.Click(css("#token-generator-replace")),
		chromedp.WaitVisible(css("#danger-dialog")))
	if !b.eval(`document.getElementById('danger-typed').hidden && !document.getElementById('danger-confirm').disabled`) {
		t.Error("replace dialog: asks for a typed name or has its confirm button disabled")
	}
	b.do("confirm replace", chromedp.Click(css("#danger-confirm")))
	b.waitJS("replaced", `document.getElementById('notice').textContent.startsWith('Token generator replaced')`)
	if _, err := tc.Sign(ctx, tag, []byte("old token")); err == nil {
		t.Error("a token of the replaced generator still works")
	}
	b.do("delete the token generator",
		chromedp.Click(css("#token-generator-delete")),
		chromedp.WaitVisible(css("#danger-dialog")),
		chromedp.Click(css("#danger-confirm")),
		chromedp.WaitVisible(css("#token-generator-create")))
	if g, err := c.GetTokenGenerator(ctx, tag); err != nil || g.Status != "INACTIVE" {
		t.Errorf("after deleting the token generator on the server: %+v, %v", g, err)
	}

	// Playground: sign and verify, and a tampered message.
	b.do("sign",
		chromedp.Click(css("#open-playground")),
		chromedp.WaitVisible(css("#pg-sign-form")),
		chromedp.SetValue(css("#pg-message"), "sign me"),
		chromedp.Click(css("#pg-sign")),
		chromedp.WaitVisible(css("#pg-signature")),
		chromedp.Click(css("#pg-verify")),
		chromedp.WaitVisible(css("#pg-verify-result")))
	if got := b.text("#pg-verify-result"); !strings.HasPrefix(got, "Valid") {
		t.Errorf("verify says %q, want Valid", got)
	}
	b.do("verify a tampered message",
		chromedp.SetValue(css("#pg-verify-message"), "sign me!"),
		chromedp.Click(css("#pg-verify")))
	b.waitJS("tampered", `document.getElementById('pg-verify-result').textContent.startsWith('Not valid')`)
	b.shot("playground-sign.png", true)

	// An API error in words: the key is disabled behind the console's back.
	if _, err := c.DisableKey(ctx, tag); err != nil {
		t.Fatal(err)
	}
	b.do("sign with a disabled key", chromedp.Click(css("#pg-sign")), chromedp.WaitVisible(css("#alert")))
	if msg := b.text("#alert-text"); !strings.Contains(msg, "422") || !strings.Contains(msg, "state does not allow") {
		t.Errorf("error on a disabled key %q, want HTTP 422 and a sentence about the key's state", msg)
	}

	// Escape closes the deletion dialog and nothing happens.
	b.do("escape the dialog",
		chromedp.Click(css("#pg-back")),
		chromedp.WaitVisible(css(`#key-detail[data-status="DISABLE"]`)),
		chromedp.Click(css("#request-deletion")),
		chromedp.WaitVisible(css("#danger-dialog")),
		chromedp.SendKeys(css("#danger-input"), "console"),
		chromedp.KeyEvent(kb.Escape))
	b.waitJS("dialog closed", `!document.getElementById('danger-dialog').open`)
	if k, err := c.GetKey(ctx, tag); err != nil || k.Status != "DISABLE" {
		t.Errorf("after Escape on the dialog: %+v, %v; want DISABLE", k, err)
	}

	// Delete now, for a key pending deletion: typed name, then gone.
	b.do("request deletion",
		chromedp.Click(css("#request-deletion")),
		chromedp.WaitVisible(css("#danger-dialog")),
		chromedp.SendKeys(css("#danger-input"), "console-rsa2"),
		chromedp.Click(css("#danger-confirm")),
		chromedp.WaitVisible(css("#delete-now")),
		chromedp.Click(css("#delete-now")),
		chromedp.WaitVisible(css("#danger-dialog")))
	if body := b.text("#danger-body"); !strings.Contains(body, "cannot be undone") {
		t.Errorf("delete-now dialog says %q, want it to say it cannot be undone", body)
	}
	b.do("delete now",
		chromedp.SendKeys(css("#danger-input"), "console-rsa2"),
		chromedp.Click(css("#danger-confirm")),
		chromedp.WaitVisible(css("#key-list")))
	if got := b.text("#notice"); !strings.Contains(got, "deleted") {
		t.Errorf("after delete now: notice %q", got)
	}
	if _, err := c.GetKey(ctx, tag); !isNotFound(err) {
		t.Errorf("after delete now: GetKey error %v, want 404", err)
	}

	// A reload signs out: nothing was kept.
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(css("#signin-form")))

	// A convergent key's playground asks for the context and sends it.
	conv, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "console-conv", KeyType: "AES256", ProtectionType: "BASIC", IsConvergent: true})
	if err != nil {
		t.Fatal(err)
	}
	b.signIn(p.URL, "#/keys/"+conv.KeyTag+"/playground", "#pg-encrypt-context")
	b.do("convergent encrypt and decrypt",
		chromedp.SetValue(css("#pg-plaintext"), "same in, same out"),
		chromedp.SendKeys(css("#pg-encrypt-context"), "ctx-1"),
		chromedp.Click(css("#pg-encrypt")),
		chromedp.WaitVisible(css("#pg-ciphertext")),
		chromedp.SendKeys(css("#pg-decrypt-context"), "ctx-1"),
		chromedp.Click(css("#pg-decrypt")),
		chromedp.WaitVisible(css("#pg-decrypted")))
	if got := b.text("#pg-decrypted"); got != "same in, same out" {
		t.Errorf("convergent decrypt %q", got)
	}
	if got, err := c.Decrypt(ctx, conv.KeyTag, b.value("#pg-ciphertext"), []byte("ctx-1")); err != nil || string(got) != "same in, same out" {
		t.Errorf("Go client decrypts the convergent ciphertext with the context to %q, %v", got, err)
	}
	for _, u := range b.pageRequests() {
		if !strings.HasPrefix(u, p.URL+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page requested %s, not on %s", u, p.URL)
		}
	}
	for _, problem := range b.pageProblems() {
		t.Errorf("page problem: %s", problem)
	}
	b.checkScreenshots([]string{"key-detail-tokens.png", "playground-sign.png"})
}
