package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// runBench runs `nkms bench` with args and env and returns its output.
func runBench(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// benchJSON runs `nkms bench --json` and decodes its report; it fails the
// test unless bench exits 0.
func benchJSON(t *testing.T, env []string, args ...string) benchReport {
	t.Helper()
	out, errOut, err := runBench(t, env, append(args, "--json")...)
	if err != nil {
		t.Fatalf("nkms bench %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	var r benchReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("progress line printed with --json on a pipe:\n%q", errOut)
	}
	return r
}

// checkReport checks what every successful run must report.
func checkReport(t *testing.T, r benchReport, op, keyType string, requests int) {
	t.Helper()
	if r.Op != op || r.KeyType != keyType {
		t.Errorf("op %q key type %q, want %q %q", r.Op, r.KeyType, op, keyType)
	}
	if r.Requests != requests {
		t.Errorf("requests = %d, want %d", r.Requests, requests)
	}
	if len(r.Errors) != 0 {
		t.Errorf("errors = %v, want none", r.Errors)
	}
	l := r.LatencyMs
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean > 0 && l.Mean <= l.Max) {
		t.Errorf("latencies %+v: want 0 < p50 <= p90 <= p99 <= max and 0 < mean <= max", l)
	}
	if r.DurationSeconds <= 0 || r.RequestsPerSecond <= 0 {
		t.Errorf("duration %vs, %v req/s: want both positive", r.DurationSeconds, r.RequestsPerSecond)
	}
}

// TestBench drives `nkms bench` against a running server.
func TestBench(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := start(t, t.TempDir(), credEnv)
	url := []string{"--url", p.URL}
	c := adminClient(t, p)

	t.Run("encrypt", func(t *testing.T) {
		r := benchJSON(t, credEnv, append(url, "--op", "encrypt", "--requests", "50", "--concurrency", "4", "--warmup", "200ms")...)
		checkReport(t, r, "encrypt", "AES256", 50)
		if r.Concurrency != 4 || r.Payload != 32 || r.Protection != "BASIC" {
			t.Errorf("concurrency %d payload %d protection %q, want 4, 32 and BASIC", r.Concurrency, r.Payload, r.Protection)
		}
		// The key made for the run is left pending deletion.
		k, err := c.GetKey(ctx, r.KeyTag)
		if err != nil || k.KeyType != "AES256" || !strings.HasPrefix(k.KeyName, "bench-") || k.Status != "REVOKE" {
			t.Errorf("bench key after the run: %+v %v; want an AES256 bench-… key in REVOKE", k, err)
		}
	})
	t.Run("spread over --nodes", func(t *testing.T) {
		// Two names of the one server: the load goes to both, and every request lands.
		other := strings.Replace(p.URL, "127.0.0.1", "localhost", 1)
		r := benchJSON(t, credEnv, append(url, "--op", "encrypt", "--requests", "40", "--concurrency", "4", "--warmup", "0",
			"--nodes", p.URL+","+other)...)
		checkReport(t, r, "encrypt", "AES256", 40)
	})
	t.Run("create-key", func(t *testing.T) {
		r := benchJSON(t, credEnv, append(url, "--op", "create-key", "--requests", "30", "--concurrency", "3", "--warmup", "0")...)
		checkReport(t, r, "create-key", "AES256", 30)
		keys, err := c.ListKeys(ctx, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		made := 0
		for _, k := range keys.KeyList {
			if strings.HasPrefix(k.KeyName, "b") && !strings.HasPrefix(k.KeyName, "bench-") {
				made++
			}
		}
		if made != 31 { // the probe request creates one more
			t.Errorf("create-key made %d keys, want 31", made)
		}
	})
	t.Run("sign ECDSA", func(t *testing.T) {
		r := benchJSON(t, credEnv, append(url, "--op", "sign", "--key-type", "ECDSA", "--requests", "20", "--concurrency", "2", "--warmup", "0")...)
		checkReport(t, r, "sign", "ECDSA", 20)
	})
	t.Run("decrypt 4 KiB", func(t *testing.T) {
		r := benchJSON(t, credEnv, append(url, "--op", "decrypt", "--payload", "4096", "--requests", "20", "--warmup", "0")...)
		checkReport(t, r, "decrypt", "AES256", 20)
		if r.Payload != 4096 {
			t.Errorf("payload %d, want 4096", r.Payload)
		}
	})
	t.Run("verify an existing key, tsv", func(t *testing.T) {
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "mine", KeyType: "RSA2048"})
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runBench(t, credEnv, append(url, "--op", "verify", "--key-tag", k.KeyTag, "--requests", "10", "--warmup", "0", "--format", "tsv")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("tsv has %d lines, want a header and a row:\n%s", len(lines), out)
		}
		head, row := strings.Split(lines[0], "\t"), strings.Split(lines[1], "\t")
		// errorsByStatus is column 14, protection the last (bench/run reads them by position).
		if len(head) != 15 || len(head) != len(row) || head[0] != "op" || row[0] != "verify" || row[1] != "RSA2048" || row[4] != "10" ||
			head[13] != "errorsByStatus" || row[13] != "-" || head[14] != "protection" || row[14] != "BASIC" {
			t.Fatalf("tsv:\n%s", out)
		}
		if k, err := c.GetKey(ctx, k.KeyTag); err != nil || k.Status != "ENABLE" {
			t.Errorf("a key given with --key-tag was changed: %+v %v", k, err)
		}
	})
	t.Run("COMMON_HSM without an HSM", func(t *testing.T) {
		// This server has no HSM: it refuses COMMON_HSM keys, and bench says
		// so in the words bench/run looks for.
		_, errOut, err := runBench(t, credEnv, append(url, "--protection", "COMMON_HSM", "--requests", "5")...)
		if err == nil || !strings.Contains(errOut, "nkms: the server refused to create a COMMON_HSM AES256 key for the run: HTTP 400") {
			t.Fatalf("bench --protection COMMON_HSM without an HSM: %v\n%s", err, errOut)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		env := []string{"NKMS_ACCESS_KEY=" + testAccessKey, "NKMS_SECRET_KEY=not-the-secret-0123456"}
		_, errOut, err := runBench(t, env, append(url, "--requests", "5")...)
		if err == nil || !strings.Contains(errOut, "HTTP 401") {
			t.Fatalf("bench with a wrong secret: %v\n%s", err, errOut)
		}
	})
}

// TestBenchRefusesBadCombinations: bad flags fail before anything is sent
// (the URL below has nothing listening).
func TestBenchRefusesBadCombinations(t *testing.T) {
	t.Parallel()
	url := []string{"--url", "http://127.0.0.1:1"}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"sign with AES256", []string{"--op", "sign", "--key-type", "AES256"}, "--op sign needs an RSA2048 or ECDSA key, not AES256"},
		{"verify with AES256", []string{"--op", "verify"}, "--op verify needs an RSA2048 or ECDSA key, not AES256"},
		{"encrypt with ECDSA", []string{"--op", "encrypt", "--key-type", "ECDSA"}, "--op encrypt needs an AES256 or RSA2048 key, not ECDSA"},
		{"unknown op", []string{"--op", "dance"}, `--op "dance" is not an operation bench knows`},
		{"unknown key type", []string{"--key-type", "DES"}, `--key-type "DES" is not AES256, RSA2048 or ECDSA`},
		{"RSA payload too big", []string{"--key-type", "RSA2048", "--payload", "191"}, "--payload 191 is over the 190 bytes"},
		{"duration and requests", []string{"--duration", "1s", "--requests", "5"}, "--duration and --requests exclude each other"},
		{"no workers", []string{"--concurrency", "0"}, "--concurrency must be at least 1"},
		{"json and tsv", []string{"--json", "--format", "tsv"}, "--json and --format tsv disagree"},
		{"unknown protection", []string{"--protection", "hsm"}, `--protection "hsm" is not BASIC or COMMON_HSM`},
		{"protection in lower case", []string{"--protection", "common_hsm"}, `--protection "common_hsm" is not BASIC or COMMON_HSM`},
		{"protection of the ceiling", []string{"--op", "ceiling", "--protection", "COMMON_HSM"}, "--protection has no meaning with --op ceiling"},
		{"protection of list-keys", []string{"--op", "list-keys", "--protection", "BASIC"}, "--protection has no meaning with --op list-keys"},
		{"protection and key tag", []string{"--key-tag", strings.Repeat("a", 64), "--protection", "COMMON_HSM"}, "--protection and --key-tag exclude each other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, err := runBench(t, credEnv, append(url, tt.args...)...)
			if err == nil || !strings.Contains(errOut, "nkms: "+tt.want) {
				t.Fatalf("got %v\n%s\nwant a failure saying %q", err, errOut, tt.want)
			}
		})
	}
}

// TestBenchCeiling loads `nkms bench-ceiling` with --op ceiling, without credentials.
func TestBenchCeiling(t *testing.T) {
	t.Parallel()
	url := testkit.Start(t, exec.Command(binary, "bench-ceiling", "--listen", "127.0.0.1:0")).URL
	noCreds := []string{"NKMS_ACCESS_KEY=", "NKMS_SECRET_KEY="}
	r := benchJSON(t, noCreds, "--op", "ceiling", "--url", url, "--requests", "30", "--concurrency", "3", "--warmup", "0")
	checkReport(t, r, "ceiling", "", 30)
	if r.KeyTag != "" {
		t.Errorf("ceiling reports key tag %q", r.KeyTag)
	}
	// An operation that needs a key does need credentials.
	if _, errOut, err := runBench(t, noCreds, "--op", "encrypt", "--url", url, "--requests", "1"); err == nil || !strings.Contains(errOut, "no credentials") {
		t.Fatalf("encrypt without credentials: %v\n%s", err, errOut)
	}
}

// TestBenchWrkScript: --format wrk prints a script whose one pre-signed
// request the server accepts, several times (within the timestamp window).
func TestBenchWrkScript(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv)
	out, errOut, err := runBench(t, credEnv, "--url", p.URL, "--op", "encrypt", "--format", "wrk")
	if err != nil {
		t.Fatalf("nkms bench --format wrk: %v\n%s", err, errOut)
	}
	field := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s in the script:\n%s", re, out)
		}
		s, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("%s: %v", m[1], err)
		}
		return s
	}
	method, path, body := field(`wrk.method = (".*")`), field(`wrk.path = (".*")`), field(`wrk.body = (".*")`)
	headers := map[string]string{}
	for _, h := range []string{"x-ncp-apigw-timestamp", "x-ncp-iam-access-key", "x-ncp-apigw-signature-v2"} {
		headers[h] = field(`wrk.headers\["` + h + `"\] = (".*")`)
	}
	for range 3 {
		req, _ := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "ncpkms:v1:") {
			t.Fatalf("the pre-signed request: %d %s", resp.StatusCode, b)
		}
	}
}
