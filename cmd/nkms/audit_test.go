package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

func isStatus(err error, status int) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == status
}

// TestAuditFailClosedFullDisk runs the server with its audit log on a real
// tmpfs, fills the tmpfs, and checks that requests answer 500 and do
// nothing while it is full, that they work again once space is freed, and
// that `nkms audit verify` finds the chain intact afterwards.
func TestAuditFailClosedFullDisk(t *testing.T) {
	t.Parallel()
	fs := testkit.Tmpfs(t, 2<<20) // above the 1 MiB the log keeps in reserve
	logPath := filepath.Join(fs, "audit.log")
	ctx := context.Background()
	p := start(t, t.TempDir(), credEnv, "--audit-log", logPath, "--audit-fail-closed")
	c := adminClient(t, p)
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "before", KeyType: "AES256"}); err != nil {
		t.Fatal(err)
	}

	filler := testkit.FillDisk(t, fs)
	eventually(t, "requests refused on a full disk", 5*time.Second, func() bool {
		_, err := c.ListKeys(ctx, 1, 10)
		return isStatus(err, 500)
	})
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "during", KeyType: "AES256"}); !isStatus(err, 500) {
		t.Fatalf("create key on a full disk: %v, want 500", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "requests served again once space is freed", 5*time.Second, func() bool {
		_, err := c.ListKeys(ctx, 1, 10)
		return err == nil
	})
	list, err := c.ListKeys(ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range list.KeyList {
		names = append(names, k.KeyName)
	}
	if len(names) != 1 || names[0] != "before" {
		t.Fatalf("keys after the full disk: %v, want only [before]", names)
	}
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "after", KeyType: "AES256"}); err != nil {
		t.Fatal(err)
	}

	p.Stop(t)
	out, err := exec.Command(binary, "audit", "verify", logPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lines, chain intact") {
		t.Fatalf("nkms audit verify: %v\n%s", err, out)
	}
	if !strings.Contains(p.Stderr.String(), "audit log closed") {
		t.Errorf("the server did not log the head of the chain at shutdown:\n%s", p.Stderr)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"route":"POST /kms/v1/keys","keyTag":"`, `"status":200,"code":"SUCCESS"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the audit log has no %s:\n%s", want, b)
		}
	}
}

// TestAuditVerifyCommand: `nkms audit verify` reports an intact chain, and
// names the first bad line of a tampered one.
func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := l.Write(audit.Entry{RequestID: "r" + string(rune('a'+i)), Route: "GET /kms/v1/keys", Status: 200, Code: "SUCCESS"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"audit", "verify", path}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "nkms: " + path + ": 4 lines, chain intact\n"; stderr.String() != want {
		t.Errorf("got %q, want %q", stderr.String(), want)
	}

	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`"requestId":"rb"`), []byte(`"requestId":"rx"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"audit", "verify", path}, nil, &stdout, &stderr)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 2: ") {
		t.Fatalf("verify of a tampered file: %v, want %s: line 2: …", err, path)
	}
	// Through the binary: exit status 1 and the message on stderr.
	cmd := exec.Command(binary, "audit", "verify", path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "nkms: "+path+": line 2: ") {
		t.Fatalf("nkms audit verify of a tampered file: %v\n%s", err, out)
	}
}

func TestAuditFailClosedNeedsAuditLog(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"server", "--audit-fail-closed"}, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--audit-fail-closed needs --audit-log") {
		t.Fatalf("server --audit-fail-closed without --audit-log: %v", err)
	}
}
