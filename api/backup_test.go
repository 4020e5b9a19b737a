package api_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/store/bolt"
)

// TestBackupRoute: an operator downloads a complete data file; it holds
// the keys made before it, and their material only sealed.
func TestBackupRoute(t *testing.T) {
	t.Parallel()
	_, c, _ := serverStack(t, false)
	ctx := t.Context()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "before-backup", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	plaintext := []byte("PLAINTEXT-THAT-MUST-NOT-BE-IN-A-BACKUP")
	if _, err := c.Encrypt(ctx, k.KeyTag, plaintext, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "signer", KeyType: "ECDSA"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := c.Backup(ctx, &buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup returned %d bytes, wrote %d", n, buf.Len())
	}
	if bytes.Contains(buf.Bytes(), plaintext) {
		t.Error("the backup holds a plaintext")
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := bolt.CheckFile(path, time.Second)
	if err != nil {
		t.Fatalf("CheckFile of the backup: %v", err)
	}
	if info.Keys != 2 || info.AccessKeys != 1 || info.RootCheck != nil {
		// serverStack does not bind a root key: no check value yet.
		t.Errorf("backup holds %+v; want 2 keys, 1 access key, no root check", info)
	}
}

// TestBackupRefused: only an admin of keystore 1 backs up; every other
// caller gets the role error (401, errorCode 210).
func TestBackupRefused(t *testing.T) {
	t.Parallel()
	_, admin, url := serverStack(t, false)
	ctx := t.Context()
	clientOf := func(keystore int64, role string) *client.Client {
		t.Helper()
		cred, err := admin.CreateAccessKey(ctx, keystore, role)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(url, cred.AccessKey, cred.SecretKey)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		keystore int64
		role     string
	}{
		{"manager of keystore 1", 1, "manager"},
		{"crypto of keystore 1", 1, "crypto"},
		{"viewer of keystore 1", 1, "viewer"},
		{"admin of keystore 2", 2, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := clientOf(tc.keystore, tc.role).Backup(ctx, &buf)
			var ae *client.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.ErrorCode != "210" {
				t.Errorf("Backup: got %v, want 401 errorCode 210", err)
			}
			if buf.Len() != 0 {
				t.Errorf("a refused backup wrote %d bytes", buf.Len())
			}
		})
	}
	bad, err := client.New(url, "NKNOBODY", "wrong-secret")
	if err != nil {
		t.Fatal(err)
	}
	var ae *client.Error
	if _, err := bad.Backup(ctx, &bytes.Buffer{}); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.ErrorCode != "200" {
		t.Errorf("Backup with unknown credentials: got %v, want 401 errorCode 200", err)
	}
}

// TestBackupUnsupportedStore: a store that cannot copy itself (mem here,
// etcd in production) answers 501 pointing to etcd's own snapshots.
func TestBackupUnsupportedStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, b := e.raw("GET", "/nkms/v1/backup", "")
	if status != http.StatusNotImplemented || !bytes.Contains(b, []byte("etcdctl snapshot save")) {
		t.Errorf("backup on a mem store: got %d %s, want 501 naming etcdctl snapshot save", status, b)
	}
}

// TestBackupWithAuditLog: with an audit log, a backup's line is written
// before the stream starts, and the stream is not held whole in memory
// first (the line says 200 and the file is complete). When the line cannot
// be written in fail-closed mode, no byte of the backup is sent.
func TestBackupWithAuditLog(t *testing.T) {
	t.Parallel()
	aud := &faultyAuditor{}
	_, c, _ := serverStack(t, false, func(cfg *api.Config) { cfg.Audit, cfg.AuditFailClosed = aud, true })
	ctx := t.Context()
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "audited", KeyType: "AES256"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.Backup(ctx, &buf); err != nil {
		t.Fatalf("Backup with an audit log: %v", err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err := bolt.CheckFile(path, time.Second); err != nil || info.Keys != 1 {
		t.Fatalf("the backup: %+v, %v", info, err)
	}
	aud.mu.Lock()
	last := aud.entries[len(aud.entries)-1]
	n := len(aud.entries)
	aud.mu.Unlock()
	if last.Route != "GET /nkms/v1/backup" || last.Status != 200 || last.Code != "SUCCESS" {
		t.Errorf("the backup's audit line: %+v", last)
	}
	if n != 2 {
		t.Errorf("%d audit lines for create + backup, want 2 (one per request)", n)
	}

	aud.set(true, false) // lines cannot be written; Ready still says yes
	buf.Reset()
	_, err := c.Backup(ctx, &buf)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusInternalServerError || buf.Len() != 0 {
		t.Fatalf("backup while its audit line fails (fail-closed): %v, %d bytes", err, buf.Len())
	}
}
