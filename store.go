package nkms

import (
	"context"
	"time"
)

// Store keeps keys and access keys. Implementations live in store/*; every one
// passes store/storetest.
//
// Contract:
//   - Values crossing the boundary are copies: a caller may keep or change what
//     it passed in or got back without affecting the store. One exception:
//     the elements of Versions in a key from Get (each Version and its sealed
//     bytes) may be shared with the store and with other callers, so that
//     reading a key of many versions copies none of them (store/cache). Treat
//     them as read-only; Key.Clone gives a copy that is wholly the caller's.
//     Appending to that Versions slice is safe (it is at capacity). What
//     Update's fn gets is always wholly its own.
//   - Not found is ErrKeyNotFound / ErrAccessKeyNotFound, never (nil, nil).
//   - Key names are unique per keystore, compared with NameKey; a clash is
//     ErrNameConflict, from Create and from an Update that renames.
//   - Key IDs are numbered per keystore: Create gives 1 + the highest ID it
//     ever gave in that keystore (a deleted key's ID is not reused), whatever
//     the caller set.
//   - Versions are numbered 1..n: Versions[i].Number == i+1 in what Create
//     and Update store, or they fail with an Internal error. The persistent
//     stores keep each version as a record of its own, and Update writes
//     only the versions fn added or changed, so that a rotation writes as
//     much at 1,000 versions as at one.
//   - Update and Delete are atomic read-modify-write operations. Their fn may
//     run more than once (optimistic backends retry), so it must do no I/O and
//     draw no randomness. An error from fn aborts the operation unchanged and
//     is returned as it is. fn may not change the key's Tag or ID.
type Store interface {
	ActivityLog // usage logs (activity.go)

	// Create stores a new key and assigns k.ID (the next ID of its keystore);
	// it returns the stored copy. An existing Tag is ErrKeyExists.
	Create(ctx context.Context, k *Key) (*Key, error)
	// Get returns the key with the given tag, with all its versions.
	Get(ctx context.Context, tag string) (*Key, error)
	// List returns one page of the keys of a keystore, newest first (by ID,
	// descending), and the total number of keys in that keystore. pageNo
	// starts at 1; a page past the end is empty.
	List(ctx context.Context, keystore int64, pageNo, pageSize int) (keys []*Key, total int, err error)
	// ListVersions returns one page of the versions of the key with tag,
	// ascending by number, and the key's number of versions. pageNo starts
	// at 1; a page past the end is empty. It reads only the page's versions.
	ListVersions(ctx context.Context, tag string, pageNo, pageSize int) (versions []Version, total int, err error)
	// Update changes the key with the given tag with fn and returns the stored result.
	Update(ctx context.Context, tag string, fn func(*Key) error) (*Key, error)
	// Delete removes the key if fn, given the current key, returns nil. The key's
	// versions and sealed material leave the store in the same transaction.
	Delete(ctx context.Context, tag string, fn func(*Key) error) error
	// Due returns the tags of at most limit keys whose DueAt is not after now,
	// earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]string, error)

	// PutAccessKey creates or replaces the access key with a.ID.
	PutAccessKey(ctx context.Context, a *AccessKey) error
	// CreateAccessKey stores a new access key; ErrAccessKeyExists if a.ID is taken.
	CreateAccessKey(ctx context.Context, a *AccessKey) error
	// GetAccessKey returns the access key with the given id.
	GetAccessKey(ctx context.Context, id string) (*AccessKey, error)
	// ListAccessKeys returns every access key, ordered by ID.
	ListAccessKeys(ctx context.Context) ([]*AccessKey, error)
	// DeleteAccessKey removes an access key and its sealed secret;
	// ErrAccessKeyNotFound if there is none.
	DeleteAccessKey(ctx context.Context, id string) error

	// Close releases the store; calling it again returns nil. Operations
	// after Close fail.
	Close() error
}

// Role is what an access key may do (role.go).
type Role string

// AccessKey is an account credential: an id, a secret (kept only sealed) and
// the keystore whose keys it sees.
type AccessKey struct {
	ID           string
	Keystore     int64
	Role         Role
	SealedSecret []byte
	Created      time.Time
}
