package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium (installed by .ci/run). Without it
// the browser tests skip locally and fail in CI. They skip with -short: a
// browser session takes many seconds.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a browser test (headless chromium); runs without -short, as in CI")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium not found; install it (apt-get install chromium) to run the browser tests")
	return ""
}

// screenshotDir is $NKMS_SCREENSHOTS, or <repo>/artifacts/screenshots.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NKMS_SCREENSHOTS")
	if dir == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "screenshots"))
		if err != nil {
			t.Fatal(err)
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless chromium tab with a record of what the page did.
type browser struct {
	t        *testing.T
	ctx      context.Context
	shotsDir string

	mu       sync.Mutex
	requests []string // every URL the page requested
	problems []string // CSP violations, JavaScript exceptions and console errors
	shots    []string
}

func newBrowser(t *testing.T, chrome, shotsDir string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	b := &browser{t: t, ctx: bctx, shotsDir: shotsDir}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Listen(bctx, b.record); err != nil {
		t.Fatal(err)
	}
	return b
}

// record runs in chromedp's event loop: it only appends under the lock.
func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		msg := ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
		b.problems = append(b.problems, "exception: "+msg)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			b.problems = append(b.problems, "console "+string(ev.Entry.Source)+": "+ev.Entry.Text)
		}
	}
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second) // a step; the browser outlives it for the diagnostics
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\nalert: %q\nnotice: %q\npage problems: %v", what, err, b.alertText(), b.noticeText(), b.pageProblems())
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(expr string) bool {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	r, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	if !r.Exists {
		b.t.Fatalf("%s has no attribute %s", sel, name)
	}
	return r.Value
}

// shot writes a PNG of the page (the whole page when full, else the
// viewport) and checks that it is a non-empty PNG.
func (b *browser) shot(name string, full bool) {
	b.t.Helper()
	action := chromedp.CaptureScreenshot()
	if full {
		action = chromedp.FullScreenshot(100) // quality 100 is PNG
	}
	buf, err := chromedp.Run(b.ctx, action)
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(buf))
	if err != nil || len(buf) == 0 || cfg.Width == 0 || cfg.Height == 0 {
		b.t.Fatalf("screenshot %s: not a non-empty PNG (%d bytes): %v", name, len(buf), err)
	}
	path := filepath.Join(b.shotsDir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.shots = append(b.shots, path)
	b.mu.Unlock()
	b.t.Logf("screenshot %s (%dx%d, %d bytes)", path, cfg.Width, cfg.Height, len(buf))
}

func (b *browser) pageRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// checkScreenshots checks that every file written is a non-empty PNG on disk.
func (b *browser) checkScreenshots(want []string) {
	b.t.Helper()
	for _, name := range want {
		path := filepath.Join(b.shotsDir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			b.t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 1000 {
			b.t.Errorf("screenshot %s: not a non-empty PNG (%d bytes)", name, len(data))
		}
	}
}

// waitJS waits until the JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		b.t.Fatalf("%s: waiting for %s: %v\nalert: %s\npage problems: %v", what, expr, err, b.alertText(), b.pageProblems())
	}
}

// alertText is the error the console shows, or "" when none is shown.
func (b *browser) alertText() string {
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](
		`document.getElementById('alert').hidden ? '' : document.getElementById('alert-text').textContent`))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

func (b *browser) noticeText() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](
		`(document.getElementById('notice').textContent || '') + ' | dialog open: ' + document.getElementById('danger-dialog').open + ' | hash: ' + location.hash`))
	return s
}

// signIn opens the console at fragment (e.g. "#/keys") and signs in.
func (b *browser) signIn(baseURL, fragment, waitFor string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.Navigate(baseURL+"/console/"+fragment),
		chromedp.WaitVisible(chromedp.CSS("#signin-form")),
		chromedp.SendKeys(chromedp.CSS("#signin-access-key"), testAccessKey),
		chromedp.SendKeys(chromedp.CSS("#signin-secret-key"), testSecretKey),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(waitFor)))
}
