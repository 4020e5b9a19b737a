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
//     it passed in or got back without affecting the store.
//   - Not found is ErrKeyNotFound / ErrAccessKeyNotFound, never (nil, nil).
//   - Key names are unique per keystore, compared with NameKey; a clash is
//     ErrNameConflict, from Create and from an Update that renames.
//   - Update and Delete are atomic read-modify-write operations. Their fn may
//     run more than once (optimistic backends retry), so it must do no I/O and
//     draw no randomness. An error from fn aborts the operation unchanged and
//     is returned as it is. fn may not change the key's Tag or ID.
type Store interface {
	ActivityLog // usage logs (activity.go)

	// Create stores a new key and assigns k.ID (a positive integer unique in
	// the server); it returns the stored copy. An existing Tag is ErrKeyExists.
	Create(ctx context.Context, k *Key) (*Key, error)
	// Get returns the key with the given tag.
	Get(ctx context.Context, tag string) (*Key, error)
	// List returns one page of the keys of a keystore, newest first (by ID,
	// descending), and the total number of keys in that keystore. pageNo
	// starts at 1; a page past the end is empty.
	List(ctx context.Context, keystore int64, pageNo, pageSize int) (keys []*Key, total int, err error)
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
