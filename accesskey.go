package nkms

import (
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"time"

	"github.com/nkms/nkms/internal/crypto"
)

// BootstrapKeystore is the keystore of the bootstrap access key (decisions.md D8).
const BootstrapKeystore = 1

var accessKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{4,64}$`)

// Credentials are an access key id and its secret, as shown once to an operator.
type Credentials struct {
	AccessKey string
	SecretKey string
	Keystore  int64
	Role      Role
}

// String never prints the secret.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKey:%s Keystore:%d Role:%s}", c.AccessKey, c.Keystore, c.Role)
}

// AuthenticateAccessKey returns the caller an access key stands for when
// verify accepts the request with mac, a keyed HMAC-SHA256 of the access
// key's secret (sigv2.NewMAC; verify must not keep it). ok is false when
// verify refuses; unknown access keys are ErrAccessKeyNotFound.
//
// An unknown (or revoked) access key costs what a known one with a wrong
// signature does: verify runs all the same, with a MAC keyed by a random
// secret of this process (its answer is ignored), drawn from a pool as a
// known key's cached MAC is. What still differs: the store's lookup (a known
// key's record is copied; store/cache remembers unknown ids, so that neither
// is read from disk every time) and, for a known key whose MAC is not cached
// yet (its first use since start-up or since it left the cache), unsealing
// its secret once.
func (s *Service) AuthenticateAccessKey(ctx context.Context, id string, verify func(mac hash.Hash) bool) (c Caller, ok bool, err error) {
	a, err := s.Store.GetAccessKey(ctx, id)
	if errors.Is(err, ErrAccessKeyNotFound) {
		s.macs.decoy(id).verify(verify)
		return Caller{}, false, err
	}
	if err != nil {
		return Caller{}, false, err
	}
	p := s.macs.get(a.ID, a.SealedSecret)
	if p == nil {
		secret, err := s.Root.Open(a.SealedSecret, crypto.SealSecretAD(a.ID))
		if err != nil {
			return Caller{}, false, fmt.Errorf("unseal secret of access key %s: %w", a.ID, err)
		}
		p = s.macs.put(a.ID, a.SealedSecret, secret)
		clear(secret)
	}
	if !p.verify(verify) {
		return Caller{}, false, nil
	}
	return Caller{AccessKey: a.ID, Keystore: a.Keystore, Role: a.Role}, true, nil
}

// AccessKeyInfo is an access key as listed: never its secret.
type AccessKeyInfo struct {
	AccessKey string
	Keystore  int64
	Role      Role
	Created   time.Time
}

// manages reports whether caller c (an admin) may manage the access keys of
// keystore ks: admins of the bootstrap keystore are the operators and manage
// every keystore; other admins only their own.
func (c Caller) manages(ks int64) bool {
	return c.Keystore == BootstrapKeystore || c.Keystore == ks
}

// CreateAccessKey makes a new access key with a role for a keystore, for an
// admin (role.go); an admin outside the bootstrap keystore may create
// access keys only for its own keystore. role "" means RoleAdmin.
func (s *Service) CreateAccessKey(ctx context.Context, c Caller, keystore int64, role Role) (*Credentials, error) {
	if err := s.authorize(ctx, c, ActCreateAccessKey, Tag{}); err != nil {
		return nil, err
	}
	if keystore < 1 {
		return nil, invalid("keystoreId must be a positive integer")
	}
	if role == "" {
		role = RoleAdmin
	}
	if !role.Valid() {
		return nil, invalid("role must be admin, manager, crypto or viewer")
	}
	if !c.manages(keystore) {
		return nil, errPermission("manage access keys of another keystore")
	}
	for {
		cred, err := newCredentials(keystore, role)
		if err != nil {
			return nil, err
		}
		a, err := s.sealAccessKey(cred)
		if err != nil {
			return nil, err
		}
		err = s.Store.CreateAccessKey(ctx, a)
		if errors.Is(err, ErrAccessKeyExists) {
			continue // a random id collided; draw again
		}
		if err != nil {
			return nil, err
		}
		s.log().InfoContext(ctx, "access key created", "accessKey", cred.AccessKey, "keystore", keystore, "role", role, "by", c.AccessKey)
		return cred, nil
	}
}

// ListAccessKeys lists the access keys the caller manages, by keystore, then
// oldest first.
func (s *Service) ListAccessKeys(ctx context.Context, c Caller) ([]AccessKeyInfo, error) {
	if err := s.authorize(ctx, c, ActListAccessKeys, Tag{}); err != nil {
		return nil, err
	}
	all, err := s.Store.ListAccessKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := []AccessKeyInfo{}
	for _, a := range all {
		if c.manages(a.Keystore) {
			out = append(out, AccessKeyInfo{AccessKey: a.ID, Keystore: a.Keystore, Role: a.Role, Created: a.Created})
		}
	}
	slices.SortStableFunc(out, func(a, b AccessKeyInfo) int {
		return cmp.Or(cmp.Compare(a.Keystore, b.Keystore), a.Created.Compare(b.Created))
	})
	return out, nil
}

// RevokeAccessKey deletes an access key the caller manages; it stops working
// on its next request. An access key cannot revoke itself (no lock-out by
// accident); an access key of a keystore the caller does not manage answers
// like one that does not exist.
func (s *Service) RevokeAccessKey(ctx context.Context, c Caller, id string) error {
	if err := s.authorize(ctx, c, ActRevokeAccessKey, Tag{}); err != nil {
		return err
	}
	if id == c.AccessKey {
		return invalid("an access key cannot revoke itself; revoke it with another admin access key")
	}
	a, err := s.Store.GetAccessKey(ctx, id)
	if err != nil {
		return err
	}
	if !c.manages(a.Keystore) {
		return ErrAccessKeyNotFound
	}
	if err := s.Store.DeleteAccessKey(ctx, id); err != nil {
		return err
	}
	s.macs.forget(id)
	s.log().InfoContext(ctx, "access key revoked", "accessKey", id, "keystore", a.Keystore, "by", c.AccessKey)
	return nil
}

// EnsureAccessKey makes sure the given access key exists with that secret, full
// rights and the bootstrap keystore (NKMS_ACCESS_KEY / NKMS_SECRET_KEY).
func (s *Service) EnsureAccessKey(ctx context.Context, id, secret string) error {
	if !accessKeyRE.MatchString(id) {
		return invalid("access key must be 4-64 letters, digits, '-' or '_'")
	}
	if len(secret) < 16 {
		return invalid("secret key must be at least 16 characters")
	}
	cred := &Credentials{AccessKey: id, SecretKey: secret, Keystore: BootstrapKeystore, Role: RoleAdmin}
	if old, err := s.Store.GetAccessKey(ctx, id); err == nil {
		if cur, err := s.Root.Open(old.SealedSecret, crypto.SealSecretAD(id)); err == nil &&
			hmac.Equal(cur, []byte(secret)) && old.Keystore == cred.Keystore && old.Role == cred.Role {
			return nil
		}
	} else if !errors.Is(err, ErrAccessKeyNotFound) {
		return err
	}
	a, err := s.sealAccessKey(cred)
	if err != nil {
		return err
	}
	return s.Store.PutAccessKey(ctx, a)
}

// Bootstrap creates a first admin access key in the bootstrap keystore when no
// access key exists yet; created is nil when there was one already.
func (s *Service) Bootstrap(ctx context.Context) (created *Credentials, err error) {
	all, err := s.Store.ListAccessKeys(ctx)
	if err != nil || len(all) > 0 {
		return nil, err
	}
	cred, err := newCredentials(BootstrapKeystore, RoleAdmin)
	if err != nil {
		return nil, err
	}
	a, err := s.sealAccessKey(cred)
	if err != nil {
		return nil, err
	}
	if err := s.Store.CreateAccessKey(ctx, a); err != nil {
		return nil, err
	}
	return cred, nil
}

func (s *Service) sealAccessKey(c *Credentials) (*AccessKey, error) {
	sealed, err := s.Root.Seal([]byte(c.SecretKey), crypto.SealSecretAD(c.AccessKey))
	if err != nil {
		return nil, fmt.Errorf("seal access key secret: %w", err)
	}
	return &AccessKey{ID: c.AccessKey, Keystore: c.Keystore, Role: c.Role, SealedSecret: sealed, Created: s.now()}, nil
}

// newCredentials draws a 20-character access key id and a 40-character secret.
func newCredentials(keystore int64, role Role) (*Credentials, error) {
	id, err := crypto.RandomBytes(15)
	if err != nil {
		return nil, err
	}
	secret, err := crypto.RandomBytes(30)
	if err != nil {
		return nil, err
	}
	return &Credentials{
		AccessKey: "NK" + base32.StdEncoding.EncodeToString(id)[:18],
		SecretKey: base64.RawURLEncoding.EncodeToString(secret),
		Keystore:  keystore,
		Role:      role,
	}, nil
}
