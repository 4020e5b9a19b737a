package nkms

import (
	"sync"

	"github.com/nkms/nkms/internal/crypto"
)

// maxCachedVersions bounds the unsealed, parsed key versions kept in memory.
const maxCachedVersions = 10_000

// keyCache keeps unsealed, parsed key versions so that a crypto call does not
// unseal and parse (for RSA, tens of microseconds) on every request. The
// material of a (keyTag, version) never changes and keyTags are never reused,
// so an entry is never stale: the key's state is still read from the store on
// every request and decides whether the version may be used. Entries of a
// destroyed key are dropped at once.
type keyCache struct {
	mu sync.Mutex
	m  map[string]map[int]*crypto.Key
	n  int
}

func (c *keyCache) get(tag string, version int) *crypto.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[tag][version]
}

func (c *keyCache) put(tag string, version int, k *crypto.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]map[int]*crypto.Key{}
	}
	if c.n >= maxCachedVersions {
		for t, vs := range c.m { // evict one arbitrary key's versions
			c.n -= len(vs)
			delete(c.m, t)
			break
		}
	}
	vs := c.m[tag]
	if vs == nil {
		vs = map[int]*crypto.Key{}
		c.m[tag] = vs
	}
	if _, ok := vs[version]; !ok {
		c.n++
	}
	vs[version] = k
}

// forget drops every version of a key.
func (c *keyCache) forget(tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n -= len(c.m[tag])
	delete(c.m, tag)
}

// ForgetKey drops the unsealed versions of a key that another node
// destroyed (with a shared store): they could not be used any more, since
// every request reads the key first, but they should not stay in memory.
func (s *Service) ForgetKey(tag string) { s.keys.forget(tag) }
