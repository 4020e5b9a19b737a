package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/atomicfile"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/server"
	"github.com/nkms/nkms/store/bolt"
)

// backupCommands are `nkms backup` (online, through the server) and
// `nkms restore` (offline, on a stopped server's data directory).
func backupCommands(c *cli) []*cobra.Command {
	return []*cobra.Command{backupCommand(c), restoreCommand(c), backupCheckCommand(c)}
}

// rootKeyNotice is said by both commands: the one thing a backup is not.
const rootKeyNotice = "the backup holds every key sealed under the root key, but not the root key itself: back up the root key file separately, and keep the two apart"

// hsmNotice is said when a backup holds COMMON_HSM key versions kept in
// an HSM token (%d: how many).
const hsmNotice = "the backup holds %d COMMON_HSM key versions that live in an HSM token: it holds only references to the token's objects, and cannot restore those versions alone; back up the token's objects with the HSM's own tools"

// lockProbe is how long restore waits for the data file's lock before it
// concludes that a server holds it.
const lockProbe = 500 * time.Millisecond

// backupSummary is what backup and restore print.
type backupSummary struct {
	File       string `json:"file"`
	Bytes      int64  `json:"bytes"`
	Keys       int    `json:"keys"`
	AccessKeys int    `json:"accessKeys"`
	// HSMVersions: COMMON_HSM key versions kept in an HSM token, of which
	// the backup holds only references.
	HSMVersions int    `json:"hsmVersions"`
	Previous    string `json:"previous,omitempty"` // restore: where the replaced data file was kept
}

func backupCommand(c *cli) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Copy the data file of a running server (bbolt store) into FILE",
		Long: `Take a consistent copy of the server's data file while it keeps serving:
the server streams the file as one read transaction sees it (GET /nkms/v1/backup,
an admin access key of keystore 1 only). FILE is written with mode 0600, checked
to be a complete nkms data file, and only then put in place.

Key material in the backup is sealed under the root key; the root key is NOT in
the backup. Back up the root key file separately: without it the backup is
useless, and with it the backup is every key in the clear.

With --store etcd, take an etcd snapshot instead (etcdctl snapshot save).
Bring a backup back with nkms restore.`,
		Example: `  nkms backup --out /backups/nkms-$(date +%F).db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || out == "-" {
				return errors.New("--out FILE is required: a backup is checked as a file before it is kept")
			}
			kms, err := c.client()
			if err != nil {
				return err
			}
			var res backupCheckResult
			err = atomicfile.Write(out, func(f io.Writer) error {
				_, err := kms.Backup(cmd.Context(), f)
				return err
			}, func(tmp string) error {
				res, err = checkDataFile(tmp, nil)
				return err
			})
			var ae *client.Error
			if errors.As(err, &ae) && ae.ErrorCode == "210" {
				return &hintError{fmt.Errorf("backup: %w", err), "only an admin access key of keystore 1 may take a backup"}
			}
			if err != nil {
				return c.explain("backup", err)
			}
			c.note("%s", rootKeyNotice)
			if res.HSMVersions > 0 {
				c.note(hsmNotice, res.HSMVersions)
			}
			info := res.Info
			return c.printSummary("backup written", backupSummary{File: out, Bytes: info.Size, Keys: info.Keys, AccessKeys: info.AccessKeys, HSMVersions: res.HSMVersions})
		},
	}
	c.clientCommand(cmd)
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to (replaced only once the new backup is complete and checked)")
	return cmd
}

func restoreCommand(c *cli) *cobra.Command {
	var in, dataDir string
	var kf keyFiles
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --in FILE --data-dir DIR",
		Short: "Put a backup back as the data file of a stopped server",
		Long: `Restore a backup taken with nkms backup into DIR/nkms.db, for a server that is
not running. The backup is checked first: it must be a complete nkms data file,
and the root key file (--root-key-file, default DIR/root.key) must be the root key
its keys are sealed under; any other root key would make every key unreadable.

An existing DIR/nkms.db is replaced only with --force, and is then kept as
DIR/nkms.db.before-restore-<time>. The new file is written next to it, synced,
checked and renamed into place (mode 0600).

A root key file wrapped by a key in an HSM token (--root-key-hsm) is unwrapped
through the token: give --hsm-module, --hsm-token, --root-key-hsm and the PIN
(NKMS_HSM_PIN or --hsm-pin-file). A backup that holds COMMON_HSM key versions
kept in an HSM token holds only references to the token's objects: restore
refuses it without --hsm-module and --hsm-token, and with them checks that the
token has every object the backup refers to.`,
		Example: `  nkms restore --in /backups/nkms-2026-01-31.db --data-dir /var/lib/nkms --root-key-file /etc/nkms/root.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if in == "" || dataDir == "" {
				return errors.New("--in FILE and --data-dir DIR are required")
			}
			if o := c.flags.output; o != "table" && o != "json" {
				return fmt.Errorf("--output %q: use table or json", clip(o, 20))
			}
			if kf.RootKeyFile == "" {
				kf.RootKeyFile = filepath.Join(dataDir, "root.key")
			}
			kf.HSMPIN = c.getenv("NKMS_HSM_PIN")
			s, err := restore(in, dataDir, &kf, force, time.Now())
			if err != nil {
				return err
			}
			c.note("%s", rootKeyNotice)
			if s.Previous != "" {
				c.note("the data file it replaced is kept as %s", s.Previous)
			}
			if s.HSMVersions > 0 {
				c.note("the token has the objects of all %d COMMON_HSM key versions the backup refers to", s.HSMVersions)
			}
			c.note("start the server with --data-dir %s and the root key file %s", dataDir, kf.RootKeyFile)
			return c.printSummary("restored", *s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in, "in", "", "backup file, from nkms backup")
	f.StringVar(&dataDir, "data-dir", "", "data directory of the stopped server")
	f.StringVar(&kf.RootKeyFile, "root-key-file", "", "root key file of the server the backup came from (default <data-dir>/root.key)")
	kf.addFlags(cmd)
	f.BoolVar(&force, "force", false, "replace an existing data file (kept as nkms.db.before-restore-<time>)")
	cmd.Flags().StringVarP(&c.flags.output, "output", "o", "table", "output format: table or json")
	return cmd
}

// printSummary prints what backup or restore did.
func (c *cli) printSummary(what string, s backupSummary) error {
	if c.jsonOutput() {
		return c.printJSON(s)
	}
	_, err := fmt.Fprintf(c.stdout, "%s: %s (%d bytes, %d keys, %d access keys)\n", what, s.File, s.Bytes, s.Keys, s.AccessKeys)
	return err
}

// restore checks the backup in and the root key (kf), then puts in into
// dataDir/nkms.db. COMMON_HSM versions kept in a token need the token
// (kf's HSM settings) to have their objects.
func restore(in, dataDir string, kf *keyFiles, force bool, now time.Time) (*backupSummary, error) {
	first, err := checkDataFile(in, nil)
	if errors.Is(err, bolt.ErrNotDataFile) {
		return nil, &hintError{fmt.Errorf("%s is not a usable backup: %w", in, err),
			"it may be cut short or damaged; take a new one with nkms backup"}
	}
	if err != nil {
		return nil, fmt.Errorf("read backup: %w", err)
	}
	info := first.Info
	if first.HSMVersions > 0 && kf.HSMModule == "" {
		return nil, &hintError{fmt.Errorf("%s holds %d COMMON_HSM key versions kept in an HSM token, and no HSM is given: the backup holds only references to the token's objects, and the restored server could not use those versions", in, first.HSMVersions),
			"give --hsm-module, --hsm-token and the PIN (NKMS_HSM_PIN or --hsm-pin-file) of the token that has them, so that restore can check it; restore the token's objects with the HSM's own tools first"}
	}
	root, tok, err := server.OpenRootKey(kf.Config)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &hintError{fmt.Errorf("root key file %s does not exist", kf.RootKeyFile),
			"give the root key file of the server the backup came from with --root-key-file"}
	}
	if err != nil {
		return nil, fmt.Errorf("read root key file: %w", err)
	}
	if tok != nil {
		tok.Close() // the check child opens it again
	}
	if info.RootCheck == nil {
		return nil, fmt.Errorf("%s has no root key check value, so its root key cannot be confirmed; it was not taken by nkms backup", in)
	}
	if _, err := root.Open(info.RootCheck, crypto.RootCheckAD()); err != nil {
		return nil, &hintError{fmt.Errorf("the root key file %s is not the root key of the backup %s: restoring it would make every key unreadable", kf.RootKeyFile, in),
			"give the root key file the server had when the backup was taken (--root-key-file)"}
	}

	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(dataDir, bolt.FileName)
	refuseRunning := func() error {
		busy, err := bolt.InUse(dbPath, lockProbe)
		if err != nil {
			return err
		}
		if busy {
			return &hintError{fmt.Errorf("a server is running on %s (it holds the lock of %s)", dataDir, dbPath),
				"stop it first: restore works on a stopped server only; to copy a running server use nkms backup"}
		}
		return nil
	}
	if err := refuseRunning(); err != nil {
		return nil, err
	}
	_, err = os.Lstat(dbPath)
	exists := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if exists && !force {
		return nil, &hintError{fmt.Errorf("%s already exists", dbPath),
			"pass --force to replace it; it is then kept as nkms.db.before-restore-<time>"}
	}

	s := &backupSummary{File: dbPath, Bytes: info.Size, Keys: info.Keys, AccessKeys: info.AccessKeys}
	err = atomicfile.Write(dbPath, func(f io.Writer) error {
		src, err := os.Open(in)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(f, src)
		return err
	}, func(tmp string) error {
		// The copy that will be kept is checked whole: its structure, and
		// every key's sealed material against the root key.
		res, err := checkDataFile(tmp, kf)
		if errors.Is(err, errDamagedSealed) || errors.Is(err, bolt.ErrNotDataFile) {
			return &hintError{fmt.Errorf("%s is not a usable backup: %w", in, err),
				"bytes in it were changed after it was taken; restore another backup"}
		} else if err != nil {
			return fmt.Errorf("the copy of the backup: %w", err)
		}
		if res.HSMVersions > 0 && !res.HSMChecked {
			return &hintError{fmt.Errorf("%s holds %d COMMON_HSM key versions kept in an HSM token, and no HSM is given", in, res.HSMVersions),
				"give --hsm-module, --hsm-token and the PIN (NKMS_HSM_PIN or --hsm-pin-file) of the token that has them"}
		}
		if res.HSMMissing > 0 {
			return &hintError{fmt.Errorf("the HSM token %q lacks the objects of %d of the %d COMMON_HSM key versions that %s refers to (the first: %s); the backup holds only references, so those versions could not be used",
				kf.HSMToken, res.HSMMissing, res.HSMVersions, in, res.FirstMissing),
				"restore the token's objects with the HSM's own tools (SoftHSM: its token directory) before nkms restore, or check --hsm-token"}
		}
		s.HSMVersions = res.HSMVersions
		if err := refuseRunning(); err != nil { // a server started meanwhile
			return err
		}
		if exists {
			s.Previous = dbPath + ".before-restore-" + now.UTC().Format("20060102T150405Z")
			// A hard link keeps the old file while the rename replaces
			// the name atomically; without links, move it aside.
			if err := os.Link(dbPath, s.Previous); err != nil {
				if err := os.Rename(dbPath, s.Previous); err != nil {
					return fmt.Errorf("keep the old data file: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
