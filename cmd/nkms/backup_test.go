package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/codec"
)

// nkmsRun runs the binary with credEnv plus env and returns its stdout and stderr.
func nkmsRun(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), credEnv...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestBackupWhileServingAndRestore takes a backup while a client keeps
// writing, changes more after it, restores it into a fresh data dir and
// checks that the restored server is the server as it was at the backup.
func TestBackupWhileServingAndRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	rootKey := filepath.Join(dir, "root.key")
	p := start(t, dir, credEnv)
	c := adminClient(t, p)

	aes, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "orders", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "signer", KeyType: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, aes.KeyTag, []byte("before the backup"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := c.Sign(ctx, ec.KeyTag, []byte("signed before the backup"))
	if err != nil {
		t.Fatal(err)
	}
	viewerCred, err := c.CreateAccessKey(ctx, 1, "viewer")
	if err != nil {
		t.Fatal(err)
	}

	// Load: encrypt and create keys until the backup is done.
	stopLoad := make(chan struct{})
	running := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			if _, err := c.Encrypt(ctx, aes.KeyTag, []byte("during"), nil); err != nil {
				t.Errorf("encrypt during the backup: %v", err)
				return
			}
			if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("during-%d", i), KeyType: "AES256"}); err != nil {
				t.Errorf("create during the backup: %v", err)
				return
			}
			if i == 0 {
				close(running)
			}
			select {
			case <-stopLoad:
				return
			default:
			}
		}
	})
	<-running
	backup := filepath.Join(t.TempDir(), "nkms-backup.db")
	out, errOut, err := nkmsRun(t, nil, "backup", "--out", backup, "--url", p.URL)
	close(stopLoad)
	wg.Wait()
	if err != nil {
		t.Fatalf("nkms backup: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "backup written: "+backup) || !strings.Contains(out, "bytes") || !strings.Contains(out, "keys") {
		t.Errorf("nkms backup printed %q; want the file, its size and key count", out)
	}
	if !strings.Contains(errOut, "not the root key itself") {
		t.Errorf("nkms backup did not say that the root key is not in the backup:\n%s", errOut)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode())
	}

	// Changes after the backup.
	after, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "after-backup", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(ctx, aes.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, ec.KeyTag); err != nil {
		t.Fatal(err)
	}
	p.Stop(t)

	fresh := filepath.Join(t.TempDir(), "restored")
	out, errOut, err = nkmsRun(t, nil, "restore", "--in", backup, "--data-dir", fresh, "--root-key-file", rootKey)
	if err != nil {
		t.Fatalf("nkms restore: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "restored: "+filepath.Join(fresh, "nkms.db")) {
		t.Errorf("nkms restore printed %q", out)
	}
	if fi, err := os.Stat(filepath.Join(fresh, "nkms.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored data file: %v, mode %v; want 0600", err, fi.Mode())
	}

	p2 := start(t, fresh, credEnv, "--root-key-file", rootKey)
	c2 := adminClient(t, p2)
	if got, err := c2.Decrypt(ctx, aes.KeyTag, ct, nil); err != nil || string(got) != "before the backup" {
		t.Errorf("decrypt a ciphertext from before the backup: %q, %v", got, err)
	}
	if ok, err := c2.Verify(ctx, ec.KeyTag, []byte("signed before the backup"), sig); err != nil || !ok {
		t.Errorf("verify a signature from before the backup: %v, %v", ok, err)
	}
	if _, err := c2.GetKey(ctx, after.KeyTag); !isNotFound(err) {
		t.Errorf("key created after the backup: %v; want NOT_FOUND", err)
	}
	if vs, err := c2.ListVersions(ctx, aes.KeyTag); err != nil || len(vs.VersionList) != 1 {
		t.Errorf("versions of the rotated key: %+v, %v; want only version 1 (the rotation came after the backup)", vs, err)
	}
	if k, err := c2.GetKey(ctx, ec.KeyTag); err != nil || k.Status != "ENABLE" {
		t.Errorf("key whose deletion was requested after the backup: %+v, %v; want ENABLE", k, err)
	}
	viewer, err := client.New(p2.URL, viewerCred.AccessKey, viewerCred.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.ListKeys(ctx, 1, 10); err != nil {
		t.Errorf("access key from the backup: %v", err)
	}
	if _, err := c2.Encrypt(ctx, aes.KeyTag, []byte("after restore"), nil); err != nil {
		t.Errorf("encrypt on the restored server: %v", err)
	}
}

// crashRE finds the Go runtime's report of a crash in a process's stderr.
var crashRE = regexp.MustCompile(`(?m)^(panic: |fatal error: |goroutine \d+ \[)`)

// TestRestoreRefuses: restore leaves everything as it was when the server
// is running, the root key is another, the backup is damaged, or a data
// file exists without --force; and only an operator may back up.
func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	rootKey := filepath.Join(dir, "root.key")
	p := start(t, dir, credEnv)
	c := adminClient(t, p)
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "kept", KeyType: "AES256"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, errOut, err := nkmsRun(t, nil, "backup", "--out", backup, "--url", p.URL); err != nil {
		t.Fatalf("nkms backup: %v\n%s", err, errOut)
	}

	t.Run("backup by others", func(t *testing.T) {
		for _, tc := range []struct {
			keystore int64
			role     string
		}{{1, "manager"}, {1, "viewer"}, {2, "admin"}} {
			cred, err := c.CreateAccessKey(ctx, tc.keystore, tc.role)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "refused.db")
			_, errOut, err := nkmsRun(t, []string{"NKMS_ACCESS_KEY=" + cred.AccessKey, "NKMS_SECRET_KEY=" + cred.SecretKey},
				"backup", "--out", out, "--url", p.URL)
			if err == nil || !strings.Contains(errOut, "HTTP 401") {
				t.Errorf("backup by %s of keystore %d: %v\n%s; want refused with 401", tc.role, tc.keystore, err, errOut)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused backup left %s: %v", out, err)
			}
		}
	})

	refused := func(t *testing.T, want string, args ...string) {
		t.Helper()
		_, errOut, err := nkmsRun(t, nil, append([]string{"restore"}, args...)...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("nkms restore %v: %v\n%s\nwant refused, saying %q", args, err, errOut, want)
		}
	}
	t.Run("running server", func(t *testing.T) {
		refused(t, "a server is running", "--in", backup, "--data-dir", dir, "--force")
		// The server writes its own file meanwhile; what restore must not
		// leave is a moved-aside data file or a temporary one.
		if left, _ := filepath.Glob(filepath.Join(dir, "*before-restore*")); len(left) != 0 {
			t.Errorf("a refused restore moved the data file aside: %v", left)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp")); len(left) != 0 {
			t.Errorf("a refused restore left temporary files: %v", left)
		}
		if list, err := c.ListKeys(ctx, 1, 10); err != nil || len(list.KeyList) != 1 {
			t.Errorf("the running server after a refused restore: %+v, %v; want its one key", list, err)
		}
	})
	t.Run("wrong root key", func(t *testing.T) {
		text, err := crypto.NewRootKeyFile()
		if err != nil {
			t.Fatal(err)
		}
		wrong := filepath.Join(t.TempDir(), "other.key")
		if err := os.WriteFile(wrong, text, 0o600); err != nil {
			t.Fatal(err)
		}
		fresh := t.TempDir()
		refused(t, "restoring it would make every key unreadable", "--in", backup, "--data-dir", fresh, "--root-key-file", wrong)
		if _, err := os.Stat(filepath.Join(fresh, "nkms.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused restore wrote a data file: %v", err)
		}
	})
	t.Run("damaged backups", func(t *testing.T) {
		data, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{
			"truncated": data[:len(data)/2],
			"garbage":   bytes.Repeat([]byte("garbage!"), 4096),
			"empty":     nil,
		} {
			bad := filepath.Join(t.TempDir(), name+".db")
			if err := os.WriteFile(bad, b, 0o600); err != nil {
				t.Fatal(err)
			}
			fresh := t.TempDir()
			refused(t, "is not a usable backup", "--in", bad, "--data-dir", fresh, "--root-key-file", rootKey)
			if _, err := os.Stat(filepath.Join(fresh, "nkms.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: a refused restore wrote a data file: %v", name, err)
			}
		}
	})
	// A byte changed inside a key's sealed material leaves the file's
	// structure whole; restore opens every sealed value with the root key
	// and refuses.
	t.Run("changed key material", func(t *testing.T) {
		data, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "bad.db")
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bbolt.Open(bad, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			tag, _ := tx.Bucket([]byte("keys")).Cursor().First()
			b := tx.Bucket([]byte("versions")).Bucket(tag) // the key's version records (store/bolt)
			n, rec := b.Cursor().First()
			v, _, err := codec.UnmarshalVersion(rec, nil)
			if err != nil {
				return err
			}
			v.Sealed[10] ^= 1
			rec, err = codec.MarshalVersion(&v)
			if err != nil {
				return err
			}
			return b.Put(n, rec)
		})
		if err := errors.Join(err, db.Close()); err != nil {
			t.Fatal(err)
		}
		fresh := t.TempDir()
		_, errOut, err := nkmsRun(t, nil, "restore", "--in", bad, "--data-dir", fresh, "--root-key-file", rootKey)
		if err == nil || !strings.Contains(errOut, "damaged key material") || !strings.Contains(errOut, "version 1") ||
			!strings.Contains(errOut, "hint: bytes in it were changed") {
			t.Fatalf("restore of a backup with changed key material: %v\n%s", err, errOut)
		}
		if _, err := os.Stat(filepath.Join(fresh, "nkms.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused restore wrote a data file: %v", err)
		}
		if left, _ := filepath.Glob(filepath.Join(fresh, ".*tmp")); len(left) != 0 {
			t.Errorf("a refused restore left temporary files: %v", left)
		}
	})
	// Damage inside the file: bbolt's check of such a file can fault or
	// spin in a goroutine of its own, which is why restore checks in a
	// child process. Whatever the damage, restore answers in words and
	// writes nothing, or restores a file that still checks out.
	t.Run("bytes changed", func(t *testing.T) {
		data, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(7, uint64(len(data))))
		refusedN := 0
		for i := range 60 {
			b := bytes.Clone(data)
			for range 1 + r.IntN(8) {
				b[r.IntN(len(b))] = byte(r.IntN(256))
			}
			bad := filepath.Join(t.TempDir(), "bad.db")
			if err := os.WriteFile(bad, b, 0o600); err != nil {
				t.Fatal(err)
			}
			fresh := t.TempDir()
			_, errOut, err := nkmsRun(t, nil, "restore", "--in", bad, "--data-dir", fresh, "--root-key-file", rootKey)
			if crashRE.MatchString(errOut) {
				t.Fatalf("input %d: restore crashed:\n%s", i, errOut)
			}
			if err == nil {
				out, _, _ := nkmsRun(t, nil, "backup-check", filepath.Join(fresh, "nkms.db"), "--root-key-file", rootKey)
				if !strings.Contains(out, `"info"`) || strings.Contains(out, `"error"`) || strings.Contains(out, `"unsealed"`) {
					t.Errorf("input %d: restored a file that does not check out: %s", i, out)
				}
				continue
			}
			refusedN++
			if !strings.Contains(errOut, "is not a usable backup") && !strings.Contains(errOut, "root key") {
				t.Errorf("input %d: restore refused without saying why in words:\n%s", i, errOut)
			}
			if _, err := os.Stat(filepath.Join(fresh, "nkms.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("input %d: a refused restore wrote a data file: %v", i, err)
			}
		}
		t.Logf("%d of 60 damaged backups refused", refusedN)
	})
	t.Run("existing data file", func(t *testing.T) {
		target := t.TempDir()
		if _, errOut, err := nkmsRun(t, nil, "restore", "--in", backup, "--data-dir", target, "--root-key-file", rootKey); err != nil {
			t.Fatalf("first restore: %v\n%s", err, errOut)
		}
		refused(t, "already exists", "--in", backup, "--data-dir", target, "--root-key-file", rootKey)
		_, errOut, err := nkmsRun(t, nil, "restore", "--in", backup, "--data-dir", target, "--root-key-file", rootKey, "--force")
		if err != nil {
			t.Fatalf("restore --force: %v\n%s", err, errOut)
		}
		kept, _ := filepath.Glob(filepath.Join(target, "nkms.db.before-restore-*"))
		if len(kept) != 1 || !strings.Contains(errOut, kept[0]) {
			t.Errorf("restore --force kept %v and said:\n%s\nwant one nkms.db.before-restore-<time>, named", kept, errOut)
		}
		if left, _ := filepath.Glob(filepath.Join(target, ".*tmp")); len(left) != 0 {
			t.Errorf("temporary files left behind: %v", left)
		}
	})
}
