package nkms

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/nkms/nkms/internal/crypto"
)

// Snapshot is one consistent copy of a whole store, as a Snapshotter hands it
// out: its size in bytes, a way to write it, and the file name a copy of it
// is kept under (the store's own data file name).
type Snapshot interface {
	Size() int64
	WriteTo(w io.Writer) (int64, error)
	FileName() string
}

// Snapshotter is a Store that can copy all its data at one point in time
// while it keeps serving (store/bolt: the data file from one read
// transaction). Key material in a snapshot is sealed, as in the store; the
// root key is never part of it.
type Snapshotter interface {
	// Snapshot calls fn with a snapshot that stays valid until fn returns.
	Snapshot(ctx context.Context, fn func(Snapshot) error) error
}

// StoreWrapper is a Store decorator (such as store/cache) that exposes the
// store it wraps, so that optional interfaces like Snapshotter can be found.
type StoreWrapper interface {
	Unwrap() Store
}

// snapshotterOf finds the Snapshotter in st or in the stores it wraps.
func snapshotterOf(st Store) (Snapshotter, bool) {
	for range 8 { // decorators nest shallowly; do not loop on a cycle
		if sn, ok := st.(Snapshotter); ok {
			return sn, true
		}
		w, ok := st.(StoreWrapper)
		if !ok {
			return nil, false
		}
		st = w.Unwrap()
	}
	return nil, false
}

// ErrBackupUnsupported answers a backup on a store that cannot take one
// itself (etcd: use etcd's own snapshots).
var ErrBackupUnsupported = &Error{Code: Invalid,
	Message: "this store cannot be backed up through nkms; with --store etcd, take an etcd snapshot (etcdctl snapshot save)"}

// CanBackup reports whether c may take a backup: an admin (role.go) of the
// bootstrap keystore (an operator). A backup holds every keystore's keys.
func (c Caller) CanBackup() bool {
	return c.operates(ActBackup)
}

// BackupAllowed reports, without taking a backup, why Backup would refuse
// c: not an operator, or a store that cannot snapshot itself
// (ErrBackupUnsupported); nil if it would not.
func (s *Service) BackupAllowed(c Caller) error {
	if !c.CanBackup() {
		return errPermission("back up the server: only an admin of keystore 1 may")
	}
	if _, ok := snapshotterOf(s.Store); !ok {
		return ErrBackupUnsupported
	}
	return nil
}

// Backup calls fn with a consistent snapshot of the whole store, for an
// operator. It fails with ErrBackupUnsupported when the store cannot
// snapshot itself.
func (s *Service) Backup(ctx context.Context, c Caller, fn func(Snapshot) error) error {
	if err := s.BackupAllowed(c); err != nil {
		return err
	}
	sn, _ := snapshotterOf(s.Store)
	s.log().Info("backup started", "by", c.AccessKey)
	return sn.Snapshot(ctx, fn)
}

// A backup holds COMMON_HSM key versions made with an HSM only as sealed
// references to token objects (hsm.go): restoring it brings those versions
// back only where the token still has the objects. HSMRefs and
// LooksLikeHSMRefs let backup and restore count and check them.

// sealedHSMRefSize is the length of a sealed token reference: format byte,
// nonce, hsmRefMagic ‖ id, tag (crypto.RootKey.Seal). Sealed software
// material never has it: AES256 material seals to 61 bytes, RSA2048 and
// ECDSA PKCS#8 material to well over 100.
const sealedHSMRefSize = 1 + 12 + len(hsmRefMagic) + hsmIDSize + 16

// LooksLikeHSMRefs counts the versions of k that are token references,
// without the root key: by the length of their sealed value (see
// sealedHSMRefSize), for COMMON_HSM keys only.
func LooksLikeHSMRefs(k *Key) int {
	if k.Protection != ProtectionCommonHSM {
		return 0
	}
	n := 0
	for _, v := range k.Versions {
		if len(v.Sealed) == sealedHSMRefSize {
			n++
		}
	}
	return n
}

// HSMRef is a version of a key kept in a token object.
type HSMRef struct {
	Version int
	ID      []byte // the object's CKA_ID
}

// HSMRefs opens the versions of COMMON_HSM key k with root and returns
// those that are token references; a version that does not open is an
// error (CheckSealed names it).
func HSMRefs(root *crypto.RootKey, k *Key) ([]HSMRef, error) {
	if k.Protection != ProtectionCommonHSM {
		return nil, nil
	}
	var refs []HSMRef
	for _, v := range k.Versions {
		m, err := root.Open(v.Sealed, crypto.SealAD(k.Tag, v.Number))
		if err != nil {
			return nil, fmt.Errorf("key %s version %d: %w", k.Tag, v.Number, err)
		}
		if id, ok := isHSMRef(m); ok {
			refs = append(refs, HSMRef{Version: v.Number, ID: bytes.Clone(id)})
		}
		clear(m)
	}
	return refs, nil
}
