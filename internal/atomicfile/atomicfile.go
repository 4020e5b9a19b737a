// Package atomicfile writes files so that a failure or a crash leaves under
// the name either what was there before or the whole new file, never a part
// of it: the bytes go to a temporary file in the same directory (mode 0600,
// a fresh random name), which is synced and closed, and only then put in
// place under the name, after which the directory is synced so that the
// new name survives a power loss too.
//
// It is the one writer of the files nkms keeps: the root key file, the --dev
// TLS certificate, the client's profile file, --out files, backups and
// restored data files.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with what fill writes: fill writes the temporary
// file, it is synced and closed, check (when not nil) must accept it (it
// gets the temporary file's name), and only then it is renamed over path
// and the directory synced. The file has mode 0600: it may hold plaintext
// or secrets. A failure leaves path as it was and no temporary file.
func Write(path string, fill func(io.Writer) error, check func(tmp string) error) error {
	return write(path, fill, check, os.Rename)
}

// WriteFile replaces path with data, as Write does.
func WriteFile(path string, data []byte) error {
	return Write(path, writeBytes(data), nil)
}

// CreateFile writes data to path, as WriteFile does, but only if path does
// not exist: otherwise it fails with an error that matches fs.ErrExist and
// leaves path as it is. Of several writers racing for one name, one wins and
// the others get fs.ErrExist. The file is put in place with a hard link, so
// that the name never shows a partial file; where the file system has no
// hard links, the name is taken first with an exclusive create and then
// replaced by the complete file, so that a crash in between can leave it
// empty (but never half written).
func CreateFile(path string, data []byte) error {
	return write(path, writeBytes(data), nil, linkNew)
}

func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// write fills a temporary file beside path, syncs it, lets check see it,
// puts it in place with commit and syncs the directory.
func write(path string, fill func(io.Writer) error, check func(tmp string) error, commit func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a rename there is nothing to remove; after a link, the spare name
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if check != nil {
		if err := check(tmp.Name()); err != nil {
			return err
		}
	}
	if err := commit(tmp.Name(), path); err != nil {
		return err
	}
	os.Remove(tmp.Name()) // before the directory sync, so that the sync covers it too
	return syncDir(dir)
}

// link is os.Link; tests replace it to act as a file system without links.
var link = os.Link

// linkNew gives the complete file tmp the name path if path does not exist.
func linkNew(tmp, path string) error {
	err := link(tmp, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	// No hard links here (e.g. FAT, some network file systems): take the
	// name, then replace the empty file with the complete one.
	f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if cerr != nil {
		return cerr
	}
	if cerr := f.Close(); cerr != nil {
		os.Remove(path)
		return cerr
	}
	if rerr := os.Rename(tmp, path); rerr != nil {
		os.Remove(path)
		return fmt.Errorf("%w (after link: %v)", rerr, err)
	}
	return nil
}

// syncDir makes the directory's entries durable: a rename or link is
// otherwise only in memory until the file system writes the directory back.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
