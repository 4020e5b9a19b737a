package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/server"
	"github.com/nkms/nkms/store/bolt"
)

// A backup is checked (bolt.CheckFile) in a child process, `nkms
// backup-check FILE`: bbolt's consistency check reads the pages in a
// goroutine of its own, where a damaged file can crash the whole process
// (a fault on a page it points to past the end of the file) or keep it
// busy. The child's crash or timeout then says that the file is damaged,
// instead of taking restore down with it. A damaged page can also make the
// check loop over billions of page numbers, filling memory: the child's
// address space is capped and its time bounded.

// errDamagedSealed: the file's structure is whole, its root key check value
// opens, but a key's sealed material does not: bytes in it changed.
var errDamagedSealed = errors.New("damaged key material")

// backupCheckResult is what the child prints on stdout.
type backupCheckResult struct {
	Info  bolt.FileInfo `json:"info"`
	Error string        `json:"error,omitempty"`
	InUse bool          `json:"inUse,omitempty"` // a server holds the file's lock
	// With a root key: how many keys and access keys had all their sealed
	// values open, and the first that did not ("" when all did).
	Sealed   int    `json:"sealed,omitempty"`
	Unsealed string `json:"unsealed,omitempty"`
	// COMMON_HSM key versions kept in a token: the backup holds only
	// references to them. Without a root key counted by the length of their
	// sealed values, with it by opening them. With an HSM: how many of the
	// referenced objects the token lacks, and the first of them.
	HSMVersions  int    `json:"hsmVersions,omitempty"`
	HSMChecked   bool   `json:"hsmChecked,omitempty"`
	HSMMissing   int    `json:"hsmMissing,omitempty"`
	FirstMissing string `json:"firstMissing,omitempty"`
	// KeyError: the root key or the token could not be opened (not a
	// fault of the file).
	KeyError string `json:"keyError,omitempty"`
}

// keyFiles are the root key file and the HSM settings that open it and
// the token objects a backup refers to (the flags of nkms restore and of
// the check child; the PIN only ever in NKMS_HSM_PIN or --hsm-pin-file).
type keyFiles struct{ server.Config }

// addFlags adds the flags of the HSM settings.
func (k *keyFiles) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&k.HSMModule, "hsm-module", "", "PKCS#11 module (.so) of the HSM that keeps the COMMON_HSM keys (and the root key's wrapping key); with --hsm-token, and the PIN in NKMS_HSM_PIN or --hsm-pin-file")
	f.StringVar(&k.HSMToken, "hsm-token", "", "--hsm-module: label of the token")
	f.StringVar(&k.HSMPINFile, "hsm-pin-file", "", "--hsm-module: file holding the token's user PIN (instead of NKMS_HSM_PIN)")
	f.StringVar(&k.RootKeyHSM, "root-key-hsm", "", "--hsm-module: the root key file is wrapped by the token's AES key with this label")
}

// args are the flags that give the check child the same settings; the
// child inherits NKMS_HSM_PIN.
func (k *keyFiles) args() []string {
	a := []string{"--root-key-file", k.RootKeyFile}
	for _, f := range []struct{ name, v string }{
		{"--hsm-module", k.HSMModule}, {"--hsm-token", k.HSMToken},
		{"--hsm-pin-file", k.HSMPINFile}, {"--root-key-hsm", k.RootKeyHSM},
	} {
		if f.v != "" {
			a = append(a, f.name, f.v)
		}
	}
	return a
}

// backupCheckCommand is the hidden child command.
func backupCheckCommand(c *cli) *cobra.Command {
	var kf keyFiles
	cmd := &cobra.Command{
		Use:    "backup-check FILE [--root-key-file FILE [HSM flags]]",
		Short:  "Check a data file or backup (run by nkms backup and restore in a child process)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			// bbolt maps the whole file; beyond that the check needs little.
			if st, err := os.Stat(args[0]); err == nil {
				if err := limitAddressSpace(checkMemory(st.Size())); err != nil {
					return err
				}
			}
			info, err := bolt.CheckFile(args[0], lockProbe)
			res := backupCheckResult{Info: info}
			if err == nil {
				kf.HSMPIN = c.getenv("NKMS_HSM_PIN")
				err = checkSealed(args[0], &kf, &res)
			}
			if err != nil {
				res.Error, res.InUse = err.Error(), errors.Is(err, bolt.ErrInUse)
			}
			return json.NewEncoder(c.stdout).Encode(res)
		},
	}
	cmd.Flags().StringVar(&kf.RootKeyFile, "root-key-file", "", "also open every sealed value with this root key")
	kf.addFlags(cmd)
	return cmd
}

// checkSealed reads every key of the data file at path and counts in res
// the versions kept in an HSM token. With a root key file (kf) it also
// opens every sealed value: res counts the keys and access keys that
// opened whole, and names the first that did not; and with an HSM it
// checks that the token has every object a version refers to.
func checkSealed(path string, kf *keyFiles, res *backupCheckResult) error {
	var root *crypto.RootKey
	var have map[string]bool // the token's object ids
	if kf.RootKeyFile != "" {
		r, tok, err := server.OpenRootKey(kf.Config)
		if err != nil {
			res.KeyError = err.Error()
			return nil
		}
		root = r
		if tok != nil {
			objs, err := tok.Objects()
			tok.Close()
			if err != nil {
				res.KeyError = "list the HSM token's objects: " + err.Error()
				return nil
			}
			have = map[string]bool{}
			for _, o := range objs {
				have[string(o.ID)] = true
			}
			res.HSMChecked = true
		}
	}
	errFound := errors.New("found")
	found := func(err error) error {
		res.Unsealed = err.Error()
		return errFound
	}
	err := bolt.ReadFile(path, lockProbe, func(k *nkms.Key) error {
		if root == nil {
			res.HSMVersions += nkms.LooksLikeHSMRefs(k)
			return nil
		}
		if err := nkms.CheckSealed(root, k); err != nil {
			return found(err)
		}
		refs, err := nkms.HSMRefs(root, k)
		if err != nil {
			return found(err)
		}
		res.HSMVersions += len(refs)
		for _, r := range refs {
			if have != nil && !have[string(r.ID)] {
				if res.HSMMissing == 0 {
					res.FirstMissing = fmt.Sprintf("key %s version %d", k.Tag, r.Version)
				}
				res.HSMMissing++
			}
		}
		res.Sealed++
		return nil
	}, func(a *nkms.AccessKey) error {
		if root == nil {
			return nil
		}
		if err := nkms.CheckSealedAccessKey(root, a); err != nil {
			return found(err)
		}
		res.Sealed++
		return nil
	})
	if errors.Is(err, errFound) {
		err = nil
	}
	return err
}

// checkMemory is the address space a check of a file of size bytes may
// use: the file, which bbolt maps; the check's maps of page numbers, about
// 100 bytes per 4 KiB page; and what the Go runtime reserves (about 1 GiB
// of address space before it allocates anything).
func checkMemory(size int64) uint64 {
	return uint64(size) + uint64(size/16) + 2<<30
}

// checkTimeout is how long a check of a file of size bytes may take: its
// reading goes at hundreds of MB/s.
func checkTimeout(size int64) time.Duration {
	return 20*time.Second + time.Duration(size/(20<<20))*time.Second
}

// checkDataFile runs bolt.CheckFile on path in a child process (see
// above); a child that crashes or does not finish in time means a damaged
// file (bolt.ErrNotDataFile). With a root key file (kf not nil), every
// sealed value must also open with that root key. The result counts the
// versions kept in an HSM token (and with an HSM, those whose objects the
// token lacks).
func checkDataFile(path string, kf *keyFiles) (backupCheckResult, error) {
	self, err := os.Executable()
	if err != nil {
		return backupCheckResult{}, fmt.Errorf("check %s: %w", path, err)
	}
	timeout := checkTimeout(0)
	if st, err := os.Stat(path); err == nil {
		timeout = checkTimeout(st.Size())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"backup-check", path}
	if kf != nil {
		args = append(args, kf.args()...)
	}
	cmd := exec.CommandContext(ctx, self, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res backupCheckResult
	if runErr != nil || json.Unmarshal(stdout.Bytes(), &res) != nil {
		why := "the check crashed"
		if ctx.Err() != nil {
			why = fmt.Sprintf("the check did not finish in %s", timeout)
		}
		return backupCheckResult{}, fmt.Errorf("%s: %w: unreadable (%s)", path, bolt.ErrNotDataFile, why)
	}
	switch {
	case res.InUse:
		return res, fmt.Errorf("%s (%w)", res.Error, bolt.ErrInUse)
	case res.Error != "":
		return res, fmt.Errorf("%s (%w)", res.Error, bolt.ErrNotDataFile)
	case res.KeyError != "":
		return res, fmt.Errorf("check %s: %s", path, res.KeyError)
	case res.Unsealed != "":
		return res, fmt.Errorf("%s: %w: a sealed value does not open with the root key (%s; %d keys and access keys before it did)",
			path, errDamagedSealed, res.Unsealed, res.Sealed)
	}
	return res, nil
}
