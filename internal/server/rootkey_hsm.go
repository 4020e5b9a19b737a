package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nkms/nkms/internal/atomicfile"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/store/bolt"
)

// A root key the HSM guards (issue 18, --root-key-hsm LABEL): the root key
// file holds only the root key wrapped (CKM_AES_GCM) by a non-extractable
// AES-256 key labelled LABEL in the token of --hsm-module/--hsm-token
// (crypto/root_wrap.go has the file format). The data file and the root key
// file together are useless without the token and its PIN.

// validateRootKeyHSM checks --root-key-hsm: it needs the HSM settings and a
// binary with HSM support.
func (c *Config) validateRootKeyHSM() error {
	if c.RootKeyHSM == "" {
		return nil
	}
	if !hsm.Supported {
		return &hintError{errors.New("--root-key-hsm: this nkms binary was built without HSM support"),
			"PKCS#11 needs cgo: build nkms with CGO_ENABLED=1 and a C compiler (the container image and the -tags noetcd build leave it out)"}
	}
	if c.HSMModule == "" {
		return &hintError{errors.New("--root-key-hsm needs --hsm-module and --hsm-token: the token that keeps the wrapping key"),
			"and the token's user PIN in NKMS_HSM_PIN or --hsm-pin-file"}
	}
	return hsm.CheckRootKeyLabel(c.RootKeyHSM)
}

// loadRootKey reads the root key: the plain file (LoadRootKey), or with
// --root-key-hsm the wrapped one (LoadRootKeyHSM), and says when it made a
// new wrapping key.
func loadRootKey(cfg Config, tok *hsm.Token, stderr io.Writer) (*crypto.RootKey, error) {
	if cfg.RootKeyHSM == "" {
		return LoadRootKey(cfg.RootKeyFile)
	}
	root, created, err := LoadRootKeyHSM(cfg.RootKeyFile, tok, cfg.RootKeyHSM)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(stderr, "nkms: generated the root key wrapping key %q in token %q; wrote the wrapped root key to %s\n",
			cfg.RootKeyHSM, cfg.HSMToken, cfg.RootKeyFile)
	}
	return root, nil
}

// LoadRootKeyHSM reads the wrapped root key file at path and unwraps it with
// the AES key labelled label in tok. When path does not exist it makes a new
// root key and writes it wrapped (mode 0600), generating the token key when
// the token has none (created is then true): the plain root key is never
// written. A plain root key file is refused (nkms root-key migrate-to-hsm
// converts it), as are a token without the key and a key that does not
// unwrap the file.
func LoadRootKeyHSM(path string, tok *hsm.Token, label string) (_ *crypto.RootKey, created bool, _ error) {
	if tok == nil {
		return nil, false, errors.New("--root-key-hsm needs --hsm-module")
	}
	text, err := ReadRootKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		root, created, err := createWrappedRootKeyFile(path, tok, label)
		if !errors.Is(err, os.ErrExist) {
			return root, created, err
		}
		text, err = ReadRootKeyFile(path) // another process created it first: use that one
	}
	if err != nil {
		return nil, false, fmt.Errorf("read root key file: %w", err)
	}
	if !crypto.IsWrappedRootKeyFile(text) {
		return nil, false, &hintError{fmt.Errorf("--root-key-hsm: root key file %s holds a plain root key, not one wrapped by the token", path),
			"convert it with nkms root-key migrate-to-hsm (with the server stopped), or start without --root-key-hsm"}
	}
	root, err := unwrapRootKeyFile(path, text, tok, label)
	return root, false, err
}

// unwrapRootKeyFile opens the wrapped root key file text (read from path)
// with the token key labelled label, with errors that say what to check.
func unwrapRootKeyFile(path string, text []byte, tok *hsm.Token, label string) (*crypto.RootKey, error) {
	w, _, err := tok.RootWrapKey(label, false)
	if errors.Is(err, hsm.ErrNoWrapKey) {
		return nil, &hintError{fmt.Errorf("--root-key-hsm: the token has no wrapping key labelled %q, so root key file %s cannot be unwrapped", label, path),
			"check --hsm-token and --root-key-hsm: the wrapping key must be in this token (copy or restore the token, e.g. SoftHSM's token directory)"}
	}
	if err != nil {
		return nil, err
	}
	root, err := crypto.UnwrapRootKeyFile(text, w)
	switch {
	case errors.Is(err, crypto.ErrRootKeyUnwrap):
		return nil, &hintError{fmt.Errorf("--root-key-hsm: the token's key %q does not unwrap root key file %s", label, path),
			"the file was wrapped by another token or key (check --hsm-token and --root-key-hsm), or it was altered: restore it from your backup"}
	case err != nil:
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return root, nil
}

// createWrappedRootKeyFile writes a new wrapped root key file at path (mode
// 0600), whole or not at all; it fails with os.ErrExist if path exists.
func createWrappedRootKeyFile(path string, tok *hsm.Token, label string) (*crypto.RootKey, bool, error) {
	w, created, err := tok.RootWrapKey(label, true)
	if err != nil {
		return nil, false, err
	}
	text, root, err := crypto.NewWrappedRootKeyFile(w)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create root key file: %w", err)
	}
	if err := atomicfile.CreateFile(path, text); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("create root key file: %w", err)
	}
	return root, created, nil
}

// MigrateResult is what MigrateRootKeyToHSM did.
type MigrateResult struct {
	RootKeyFile    string
	AlreadyWrapped bool // the file was already wrapped by the key: nothing done
	CreatedWrapKey bool // the token's wrapping key was generated
	DataFile       bool // the root key was checked against the data file (false: none in the data dir)
}

// lockWait is how long MigrateRootKeyToHSM waits for the data file's lock
// before it concludes that a server holds it.
const lockWait = 500 * time.Millisecond

// MigrateRootKeyToHSM converts the plain root key file of cfg (DataDir,
// RootKeyFile, the HSM settings and RootKeyHSM) into one wrapped by the
// token key labelled cfg.RootKeyHSM, generating that key if the token has
// none. It holds the data file's lock throughout (a running server holds
// it: refused), checks the root key against the data file's check value,
// and replaces the file atomically only after the new file unwraps, through
// the token, to the same root key. A file already wrapped by that key is
// left as it is (AlreadyWrapped).
func MigrateRootKeyToHSM(ctx context.Context, cfg Config) (MigrateResult, error) {
	if cfg.DataDir == "" {
		return MigrateResult{}, errors.New("--data-dir must not be empty")
	}
	if cfg.RootKeyFile == "" {
		cfg.RootKeyFile = filepath.Join(cfg.DataDir, "root.key")
	}
	res := MigrateResult{RootKeyFile: cfg.RootKeyFile}
	if cfg.RootKeyHSM == "" {
		return res, errors.New("--root-key-hsm LABEL is required: the label of the token's wrapping key")
	}
	if err := cfg.validateRootKeyHSM(); err != nil {
		return res, err
	}
	if err := cfg.validateHSM(); err != nil {
		return res, err
	}
	text, err := ReadRootKeyFile(cfg.RootKeyFile)
	if err != nil {
		return res, fmt.Errorf("read root key file: %w", err)
	}
	var data *bolt.Store
	if path := filepath.Join(cfg.DataDir, bolt.FileName); fileExists(path) {
		data, err = bolt.Open(path, bolt.Options{Timeout: lockWait})
		if errors.Is(err, bolt.ErrInUse) {
			return res, &hintError{fmt.Errorf("the data file %s is in use: is an nkms server running on --data-dir %s?", path, cfg.DataDir),
				"stop the server first: the root key file must not change under a running server"}
		}
		if err != nil {
			return res, err
		}
		defer data.Close()
		res.DataFile = true
	}
	tok, err := openHSM(cfg)
	if err != nil {
		return res, err
	}
	defer tok.Close()
	if crypto.IsWrappedRootKeyFile(text) {
		if _, err := unwrapRootKeyFile(cfg.RootKeyFile, text, tok, cfg.RootKeyHSM); err != nil {
			return res, fmt.Errorf("root key file %s is already wrapped, but: %w", cfg.RootKeyFile, err)
		}
		res.AlreadyWrapped = true
		return res, nil
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		return res, fmt.Errorf("root key file %s: %w", cfg.RootKeyFile, err)
	}
	if data != nil {
		be := &backend{rootCheck: data.RootCheck, where: filepath.Join(cfg.DataDir, bolt.FileName)}
		if err := bindRootKey(ctx, be, root); err != nil {
			return res, err
		}
	}
	w, created, err := tok.RootWrapKey(cfg.RootKeyHSM, true)
	if err != nil {
		return res, err
	}
	res.CreatedWrapKey = created
	wrapped, err := crypto.WrapRootKeyFile(text, w)
	if err != nil {
		return res, err
	}
	err = atomicfile.Write(cfg.RootKeyFile, func(f io.Writer) error {
		_, err := f.Write(wrapped)
		return err
	}, func(tmp string) error {
		return sameRootKey(tmp, tok, cfg.RootKeyHSM, root)
	})
	if err != nil {
		return res, fmt.Errorf("write the wrapped root key file: %w", err)
	}
	return res, nil
}

// sameRootKey checks that the wrapped file at path unwraps through the
// token to want: a value sealed under want opens under the unwrapped key.
func sameRootKey(path string, tok *hsm.Token, label string, want *crypto.RootKey) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	got, err := unwrapRootKeyFile(path, text, tok, label)
	if err != nil {
		return err
	}
	probe, err := crypto.RandomBytes(32)
	if err != nil {
		return err
	}
	sealed, err := want.Seal(probe, crypto.RootCheckAD())
	if err != nil {
		return err
	}
	if _, err := got.Open(sealed, crypto.RootCheckAD()); err != nil {
		return errors.New("the wrapped root key file does not unwrap to the same root key: the plain file is left as it was")
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// OpenRootKey reads the root key of cfg for a tool that works on a stopped
// server's files (nkms restore, its backup check): the plain root key file,
// or with cfg.RootKeyHSM the wrapped one, unwrapped through the token. It
// never creates a file or a token key. With cfg.HSMModule it returns the
// logged-in token too (the caller closes it), to check COMMON_HSM
// references; without, the token is nil.
func OpenRootKey(cfg Config) (*crypto.RootKey, *hsm.Token, error) {
	if err := cfg.validateRootKeyHSM(); err != nil {
		return nil, nil, err
	}
	if err := cfg.validateHSM(); err != nil {
		return nil, nil, err
	}
	text, err := ReadRootKeyFile(cfg.RootKeyFile)
	if err != nil {
		return nil, nil, err
	}
	if cfg.RootKeyHSM == "" {
		root, err := crypto.ParseRootKeyFile(text)
		if errors.Is(err, crypto.ErrWrappedRootKey) {
			return nil, nil, &hintError{fmt.Errorf("root key file %s is wrapped by a key in an HSM token, and --root-key-hsm is not given", cfg.RootKeyFile),
				"give --root-key-hsm LABEL, --hsm-module, --hsm-token and the PIN (NKMS_HSM_PIN or --hsm-pin-file): docs/operations/hsm.md"}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("root key file %s: %w", cfg.RootKeyFile, err)
		}
		if cfg.HSMModule == "" {
			return root, nil, nil
		}
		tok, err := openHSM(cfg)
		if err != nil {
			return nil, nil, err
		}
		return root, tok, nil
	}
	if !crypto.IsWrappedRootKeyFile(text) {
		return nil, nil, &hintError{fmt.Errorf("--root-key-hsm: root key file %s holds a plain root key, not one wrapped by the token", cfg.RootKeyFile),
			"give the wrapped root key file, or leave out --root-key-hsm"}
	}
	tok, err := openHSM(cfg)
	if err != nil {
		return nil, nil, err
	}
	root, err := unwrapRootKeyFile(cfg.RootKeyFile, text, tok, cfg.RootKeyHSM)
	if err != nil {
		tok.Close()
		return nil, nil, err
	}
	return root, tok, nil
}
