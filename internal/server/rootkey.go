package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nkms/nkms/internal/atomicfile"
	"github.com/nkms/nkms/internal/crypto"
)

// LoadRootKey reads the root key file, creating it with mode 0600 when it
// does not exist. It refuses a file that its group or others may read or
// write.
func LoadRootKey(path string) (*crypto.RootKey, error) {
	text, err := ReadRootKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		text, err = createRootKeyFile(path)
		if errors.Is(err, os.ErrExist) { // another process created it first: use that one
			text, err = ReadRootKeyFile(path)
		} else if err != nil {
			return nil, fmt.Errorf("create root key file: %w", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read root key file: %w", err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if errors.Is(err, crypto.ErrWrappedRootKey) {
		return nil, &hintError{fmt.Errorf("root key file %s is wrapped by a key in an HSM token, and --root-key-hsm is not given", path),
			"start with --root-key-hsm LABEL, --hsm-module, --hsm-token and the PIN (NKMS_HSM_PIN or --hsm-pin-file): docs/operations/hsm.md"}
	}
	if err != nil {
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return root, nil
}

// createRootKeyFile writes a new root key file at path (mode 0600), whole or
// not at all; it fails with os.ErrExist if path exists.
func createRootKeyFile(path string) ([]byte, error) {
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.CreateFile(path, text); err != nil {
		return nil, err
	}
	return text, nil
}

// ReadRootKeyFile reads the text of a root key file, which only its owner
// may read or write.
func ReadRootKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &hintError{fmt.Errorf("root key file %s has mode %04o: its group or others may read it", path, perm),
			"chmod 600 " + path + " (and check who may have copied it)"}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("root key file %s is not a regular file", path)
	}
	return io.ReadAll(f)
}

// bindRootKey makes sure that root is the root key the store's data was
// sealed with: the first start stores a value sealed under it, and every
// later start (on any node) must be able to open that value. A node started
// with another root key would otherwise fail every request, or worse, seal
// new keys that no other node can open.
func bindRootKey(ctx context.Context, b *backend, root *crypto.RootKey) error {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	candidate, err := root.Seal(nonce, crypto.RootCheckAD())
	if err != nil {
		return err
	}
	stored, err := b.rootCheck(ctx, candidate)
	if err != nil {
		return err
	}
	if _, err := root.Open(stored, crypto.RootCheckAD()); err != nil {
		return &hintError{errors.New("the root key file is not the root key of " + b.where),
			"every node must use the same root key file (copy it from the first node, mode 0600); restore it from your backup if it was replaced"}
	}
	return nil
}
