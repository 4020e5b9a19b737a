package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nkms/nkms"
)

// A chunk holds several usage-log entries in one stored value (store/etcd
// writes the ordinary entries of one append as one chunk). Its encoding
// cannot be taken for an activity record, which is a JSON object:
//
//	chunkMagic (1 byte, not valid as the start of JSON or UTF-8)
//	ChunkFormat (1 byte)
//	uvarint number of entries (at least 1)
//	per entry: uvarint length ‖ id (opaque to this package),
//	           uvarint length ‖ activity record (MarshalActivity)
//
// Decoding refuses another format byte, trailing bytes, and any entry whose
// record UnmarshalActivity refuses.
const (
	chunkMagic  = 0xA7
	ChunkFormat = 1
)

// maxChunkEntries bounds the number a chunk may claim, so that a corrupt
// value cannot make decoding allocate much.
const maxChunkEntries = 1 << 20

// ErrNotChunk is returned by UnmarshalActivityChunk for a value that is
// not a chunk (for example a single activity record).
var ErrNotChunk = errors.New("not an activity chunk")

// ChunkEntry is one entry of a chunk: its id (the store's entry key) and
// the entry.
type ChunkEntry struct {
	ID       string
	Activity nkms.Activity
}

// IsActivityChunk reports whether b is (claims to be) a chunk rather than a
// single activity record.
func IsActivityChunk(b []byte) bool { return len(b) > 0 && b[0] == chunkMagic }

// MarshalActivityChunk encodes es, in their order, as one chunk. Entries
// must be at least one.
func MarshalActivityChunk(es []ChunkEntry) ([]byte, error) {
	recs := make([][]byte, len(es))
	for i := range es {
		rec, err := MarshalActivity(&es[i].Activity)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return AppendActivityChunk(nil, es, recs)
}

// AppendActivityChunk appends to dst the chunk of entries es whose records
// (MarshalActivity) are recs: callers that have the records already encode
// no entry twice.
func AppendActivityChunk(dst []byte, es []ChunkEntry, recs [][]byte) ([]byte, error) {
	if len(es) == 0 || len(es) != len(recs) || len(es) > maxChunkEntries {
		return nil, fmt.Errorf("encode activity chunk: %d entries, %d records", len(es), len(recs))
	}
	dst = append(dst, chunkMagic, ChunkFormat)
	dst = binary.AppendUvarint(dst, uint64(len(es)))
	for i := range es {
		dst = binary.AppendUvarint(dst, uint64(len(es[i].ID)))
		dst = append(dst, es[i].ID...)
		dst = binary.AppendUvarint(dst, uint64(len(recs[i])))
		dst = append(dst, recs[i]...)
	}
	return dst, nil
}

// UnmarshalActivityChunk decodes a chunk written by MarshalActivityChunk.
func UnmarshalActivityChunk(b []byte) ([]ChunkEntry, error) {
	ids, recs, err := SplitActivityChunk(b)
	if err != nil {
		return nil, err
	}
	es := make([]ChunkEntry, len(ids))
	for i, rec := range recs {
		a, err := UnmarshalActivity(rec)
		if err != nil {
			return nil, fmt.Errorf("decode activity chunk: entry %d: %w", i, err)
		}
		es[i] = ChunkEntry{ID: ids[i], Activity: *a}
	}
	return es, nil
}

// SplitActivityChunk returns the ids and the records (sub-slices of b, not
// decoded) of the entries of chunk b: what a store needs to cut a chunk and
// write part of it again, without decoding every record.
func SplitActivityChunk(b []byte) (ids []string, recs [][]byte, err error) {
	if !IsActivityChunk(b) {
		return nil, nil, ErrNotChunk
	}
	if len(b) < 2 || b[1] != ChunkFormat {
		return nil, nil, fmt.Errorf("decode activity chunk: %w", ErrUnknownFormat)
	}
	b = b[2:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n == 0 || n > maxChunkEntries || n > uint64(len(b)) {
		return nil, nil, errors.New("decode activity chunk: bad entry count")
	}
	b = b[w:]
	field := func() ([]byte, error) {
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return nil, errors.New("decode activity chunk: truncated")
		}
		f := b[w : w+int(l) : w+int(l)]
		b = b[w+int(l):]
		return f, nil
	}
	ids, recs = make([]string, 0, n), make([][]byte, 0, n)
	for range n {
		id, err := field()
		if err != nil {
			return nil, nil, err
		}
		rec, err := field()
		if err != nil {
			return nil, nil, err
		}
		ids, recs = append(ids, string(id)), append(recs, rec)
	}
	if len(b) != 0 {
		return nil, nil, errors.New("decode activity chunk: trailing bytes")
	}
	return ids, recs, nil
}
