package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
)

var updateScripts = flag.Bool("update-scripts", false, "rewrite the cmp golden files in testdata/script")

// TestScripts runs the CLI scripts of testdata/script: each is a txtar file
// of `exec nkms ...` lines with the output they must give (see
// testscript's documentation). Each script gets its own in-process server
// (bbolt in the script's temporary directory, the real API stack), a
// $HOME with no profile file, and the environment a user would set:
//
//	NKMS_ENDPOINT, NKMS_ACCESS_KEY, NKMS_SECRET_KEY  the server and its admin key
//	SERVER_URL, SERVER_KEY_ID, SERVER_SECRET           the same, for scripts that unset those
//
// Extra commands: `setfrom VAR REGEXP` sets VAR from the last stdout
// (the first group of the first match); `until REGEXP PROGRAM ARGS...` runs
// the program again until its stdout matches (for what the server does in
// the background, like writing usage logs; 10 s at most); and
// `cmpnorm FILE GOLDEN` compares
// like cmpenv after writing times in FILE as TIME and durations left as
// DURATION, so tables with dates can be golden files.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "testdata/script",
		UpdateScripts: *updateScripts,
		Setup:         setupScript,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"setfrom": cmdSetFrom,
			"cmpnorm": cmdCmpNorm,
			"until":   cmdUntil,
		},
	})
}

func setupScript(e *testscript.Env) error {
	dir := filepath.Join(e.WorkDir, ".server")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	url, stop, err := startScriptServer(dir)
	if err != nil {
		return err
	}
	e.Defer(stop)
	home := filepath.Join(e.WorkDir, ".home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	e.Setenv("PATH", filepath.Dir(binary)+string(os.PathListSeparator)+e.Getenv("PATH"))
	e.Setenv("HOME", home)
	e.Setenv("NKMS_ENDPOINT", url)
	e.Setenv("NKMS_ACCESS_KEY", testAccessKey)
	e.Setenv("NKMS_SECRET_KEY", testSecretKey)
	e.Setenv("SERVER_URL", url)
	e.Setenv("SERVER_KEY_ID", testAccessKey)
	e.Setenv("SERVER_SECRET", testSecretKey)
	return nil
}

// startScriptServer runs the API over a bbolt store in dir, as nkms server
// --dev-clock does, on a loopback port, with the test admin access key in
// keystore 1.
func startScriptServer(dir string) (url string, stop func(), err error) {
	st, err := bolt.Open(filepath.Join(dir, "nkms.db"), bolt.Options{})
	if err != nil {
		return "", nil, err
	}
	store := cache.New(st, 0)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		st.Close()
		return "", nil, err
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		st.Close()
		return "", nil, err
	}
	dev, _ := nkms.NewDevClock(time.Now, 0, nil) // as with --dev-clock, unsaved (an offset of 0 is in range)
	svc := &nkms.Service{Store: store, Root: root, Now: dev.Now, DevClock: dev, DeletionWindow: nkms.DefaultDeletionWindow, Log: log,
		Recorder: nkms.NewRecorder(store, 0, log)}
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.EnsureAccessKey(ctx, testAccessKey, testSecretKey); err != nil {
		cancel()
		st.Close()
		return "", nil, err
	}
	srv := httptest.NewUnstartedServer(nil)
	url = "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = api.New(svc, api.Config{PublicURL: url, Log: log})
	srv.Start()
	var wg sync.WaitGroup
	wg.Go(func() { svc.Recorder.Run(ctx) })
	return url, func() {
		srv.Close()
		cancel()
		wg.Wait()
		st.Close()
	}, nil
}

func cmdSetFrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setfrom VAR REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil {
		ts.Fatalf("setfrom: no match of %s in stdout", args[1])
	}
	ts.Setenv(args[0], m[len(m)-1])
}

func cmdUntil(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: until REGEXP PROGRAM ARGS...")
	}
	re, err := regexp.Compile(args[0])
	ts.Check(err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ts.Exec(args[1], args[2:]...)
		if err == nil && re.MatchString(ts.ReadFile("stdout")) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("until: after 10s, %s still gives no match of %s (last error: %v)", args[1], args[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var (
	timeRE     = regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	durationRE = regexp.MustCompile(`\b\d+h \d+m\b`)
)

// normalize writes times as TIME and "71h 58m" durations as DURATION.
func normalize(s string) string {
	return durationRE.ReplaceAllString(timeRE.ReplaceAllString(s, "TIME"), "DURATION")
}

func cmdCmpNorm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: cmpnorm FILE GOLDEN")
	}
	got := normalize(ts.ReadFile(args[0]))
	want := os.Expand(ts.ReadFile(args[1]), ts.Getenv)
	if got == want {
		return
	}
	ts.Logf("%s (normalized):\n%s", args[0], got)
	ts.Fatalf("%s and %s differ:\n%s", args[0], args[1], lineDiff(want, got))
}

// lineDiff shows the lines of want and got that differ, by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}
