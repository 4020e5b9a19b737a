package nkms

import "context"

// KeyKind is a key state and type: what CountKeys counts by.
type KeyKind struct {
	State State
	Type  KeyType
}

// A count lists a keystore in pages of at least keyCountPage keys, and in
// at most about keyCountPages pages: Store.List skips to its page (bbolt
// walks an index, etcd reads it), so a fixed page size would make a count
// quadratic in the keys of a keystore; this bounds the skipping to about
// keyCountPages/2 index steps per key, for at most total/keyCountPages
// decoded keys in memory at once.
const (
	keyCountPage  = 2000
	keyCountPages = 50
)

// CountKeys counts every key by state and type; every combination is in
// the result, 0 when there is none. It walks each keystore that has an
// access key, page by page with Store.List: its cost is that of listing
// (decoding) every key once, so it is for background work (metrics), never
// for a request. Keys of a keystore that no longer has any access key are
// not counted; keys created or destroyed during a count may be counted
// twice or missed.
func (s *Service) CountKeys(ctx context.Context) (map[KeyKind]int, error) {
	aks, err := s.Store.ListAccessKeys(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[KeyKind]int{}
	for _, st := range []State{StateEnable, StateDisable, StateRevoke} {
		for _, t := range []KeyType{AES256, RSA2048, ECDSA} {
			counts[KeyKind{st, t}] = 0
		}
	}
	seen := map[int64]bool{}
	for _, a := range aks {
		if seen[a.Keystore] {
			continue
		}
		seen[a.Keystore] = true
		_, total, err := s.Store.List(ctx, a.Keystore, 1, 1)
		if err != nil {
			return nil, err
		}
		size := max(keyCountPage, (total+keyCountPages-1)/keyCountPages)
		for page := 1; (page-1)*size < total; page++ {
			keys, _, err := s.Store.List(ctx, a.Keystore, page, size)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				counts[KeyKind{k.State, k.Type}]++
			}
			if len(keys) < size {
				break
			}
		}
	}
	return counts, nil
}
