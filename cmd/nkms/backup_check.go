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
}

// backupCheckCommand is the hidden child command.
func backupCheckCommand(c *cli) *cobra.Command {
	var rootKeyFile string
	cmd := &cobra.Command{
		Use:    "backup-check FILE [--root-key-file FILE]",
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
			if err == nil && rootKeyFile != "" {
				res.Sealed, res.Unsealed, err = checkSealed(args[0], rootKeyFile)
			}
			if err != nil {
				res.Error, res.InUse = err.Error(), errors.Is(err, bolt.ErrInUse)
			}
			return json.NewEncoder(c.stdout).Encode(res)
		},
	}
	cmd.Flags().StringVar(&rootKeyFile, "root-key-file", "", "also open every sealed value with this root key")
	return cmd
}

// checkSealed opens every sealed value of the data file at path with the
// root key of rootKeyFile: it returns how many keys and access keys opened
// whole, and names the first that did not.
func checkSealed(path, rootKeyFile string) (sealed int, unsealed string, err error) {
	text, err := server.ReadRootKeyFile(rootKeyFile)
	if err != nil {
		return 0, "", fmt.Errorf("root key file: %w", err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		return 0, "", fmt.Errorf("root key file %s: %w", rootKeyFile, err)
	}
	errFound := errors.New("found")
	found := func(err error) error {
		unsealed = err.Error()
		return errFound
	}
	err = bolt.ReadFile(path, lockProbe, func(k *nkms.Key) error {
		if err := nkms.CheckSealed(root, k); err != nil {
			return found(err)
		}
		sealed++
		return nil
	}, func(a *nkms.AccessKey) error {
		if err := nkms.CheckSealedAccessKey(root, a); err != nil {
			return found(err)
		}
		sealed++
		return nil
	})
	if errors.Is(err, errFound) {
		err = nil
	}
	return sealed, unsealed, err
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
// file (bolt.ErrNotDataFile). With a rootKeyFile, every sealed value must
// also open with that root key.
func checkDataFile(path, rootKeyFile string) (bolt.FileInfo, error) {
	self, err := os.Executable()
	if err != nil {
		return bolt.FileInfo{}, fmt.Errorf("check %s: %w", path, err)
	}
	timeout := checkTimeout(0)
	if st, err := os.Stat(path); err == nil {
		timeout = checkTimeout(st.Size())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"backup-check", path}
	if rootKeyFile != "" {
		args = append(args, "--root-key-file", rootKeyFile)
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
		return bolt.FileInfo{}, fmt.Errorf("%s: %w: unreadable (%s)", path, bolt.ErrNotDataFile, why)
	}
	switch {
	case res.InUse:
		return res.Info, fmt.Errorf("%s (%w)", res.Error, bolt.ErrInUse)
	case res.Error != "":
		return res.Info, fmt.Errorf("%s (%w)", res.Error, bolt.ErrNotDataFile)
	case res.Unsealed != "":
		return res.Info, fmt.Errorf("%s: %w: a sealed value does not open with the root key (%s; %d keys and access keys before it did)",
			path, errDamagedSealed, res.Unsealed, res.Sealed)
	}
	return res.Info, nil
}
