package nkms

import (
	"bytes"
	"crypto/rand"
	"hash"
	"sync"

	"github.com/nkms/nkms/internal/crypto"
)

// maxCachedMACs bounds the access keys whose keyed HMACs are kept.
const maxCachedMACs = 10_000

// macCache keeps, per access key, keyed HMAC-SHA256 states of its secret, so
// that verifying a signature neither unseals the secret nor keys a new HMAC
// on every request. An entry remembers the sealed secret it was made from and
// is used only while the stored access key still has those exact bytes (a
// new secret is sealed under a fresh nonce); the access key itself is read
// from the store on every request, so a revoked key fails on its next request.
type macCache struct {
	mu sync.Mutex
	m  map[string]*macPool

	decoyOnce sync.Once
	decoyPool *macPool
}

// macPool holds the idle MACs of one access key's secret.
type macPool struct {
	sealed []byte
	pool   sync.Pool // of hash.Hash: HMAC-SHA256 keyed with the secret
}

// get returns the pool of the access key id made from sealed, or nil.
func (c *macCache) get(id string, sealed []byte) *macPool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.m[id]; p != nil && bytes.Equal(p.sealed, sealed) {
		return p
	}
	return nil
}

// put makes and keeps the pool of access key id with the given secret.
func (c *macCache) put(id string, sealed, secret []byte) *macPool {
	p := &macPool{sealed: bytes.Clone(sealed)}
	key := bytes.Clone(secret)
	// HMAC-SHA256 keyed with the secret, as sigv2.NewMAC makes it.
	p.pool.New = func() any { return crypto.NewMAC(key) }
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*macPool{}
	}
	if len(c.m) >= maxCachedMACs {
		for other := range c.m { // evict one arbitrary access key
			delete(c.m, other)
			break
		}
	}
	c.m[id] = p
	return p
}

// forget drops the MACs of access key id.
func (c *macCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// decoySecretSize is the length of the decoy's key: that of a generated
// access key's secret (40 Base64 characters).
const decoySecretSize = 40

// decoy returns the pool of MACs keyed with a random secret of this process,
// which no access key has, for the unknown access key id: verifying its
// signature with it costs what verifying a known one's does. It looks id up
// as get does first, for the same reason (never a hit: no entry is made from
// empty sealed bytes).
func (c *macCache) decoy(id string) *macPool {
	c.get(id, nil)
	c.decoyOnce.Do(func() {
		secret := make([]byte, decoySecretSize)
		rand.Read(secret) // never fails (crypto/rand, Go 1.24+)
		p := &macPool{}
		p.pool.New = func() any { return crypto.NewMAC(secret) }
		c.decoyPool = p
	})
	return c.decoyPool
}

// verify runs fn with one of the pool's MACs.
func (p *macPool) verify(fn func(mac hash.Hash) bool) bool {
	mac := p.pool.Get().(hash.Hash)
	defer p.pool.Put(mac)
	return fn(mac)
}
