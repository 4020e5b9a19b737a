package nkms

import (
	"context"
	"io"
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
