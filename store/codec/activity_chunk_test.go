package codec

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleChunk() []ChunkEntry {
	a, b := *sampleActivity(), *sampleActivity()
	b.Time, b.Action, b.Message = b.Time.Add(time.Second), "Encrypt", ""
	return []ChunkEntry{{ID: "aa", Activity: a}, {ID: "bb", Activity: b}}
}

func TestActivityChunkRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := MarshalActivityChunk(sampleChunk())
	if err != nil {
		t.Fatal(err)
	}
	if !IsActivityChunk(b) {
		t.Error("IsActivityChunk(chunk) = false")
	}
	got, err := UnmarshalActivityChunk(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, sampleChunk()); diff != "" {
		t.Errorf("round trip (-got +want):\n%s", diff)
	}
}

// TestActivityChunkGolden: the encoding of a chunk is pinned
// (testdata/activity_chunk.golden), so that stored chunks stay readable.
func TestActivityChunkGolden(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/activity_chunk.golden")
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalActivityChunk(sampleChunk())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("chunk encoding changed:\n got %q\nwant %q", b, want)
	}
	got, err := UnmarshalActivityChunk(want)
	if err != nil || !cmp.Equal(got, sampleChunk()) {
		t.Errorf("decoding the golden chunk: %v, %v", got, err)
	}
}

// TestActivityChunkNotARecord: a chunk and a record are told apart both ways.
func TestActivityChunkNotARecord(t *testing.T) {
	t.Parallel()
	rec, err := MarshalActivity(sampleActivity())
	if err != nil {
		t.Fatal(err)
	}
	if IsActivityChunk(rec) {
		t.Error("IsActivityChunk(record) = true")
	}
	if _, err := UnmarshalActivityChunk(rec); !errors.Is(err, ErrNotChunk) {
		t.Errorf("UnmarshalActivityChunk(record) error = %v, want ErrNotChunk", err)
	}
	b, _ := MarshalActivityChunk(sampleChunk())
	if _, err := UnmarshalActivity(b); err == nil {
		t.Error("UnmarshalActivity(chunk) succeeded")
	}
	for _, bad := range [][]byte{{chunkMagic}, {chunkMagic, 2, 1}, {chunkMagic, ChunkFormat, 0}, append(b[:len(b):len(b)], 0), b[:len(b)-1]} {
		if _, err := UnmarshalActivityChunk(bad); err == nil {
			t.Errorf("UnmarshalActivityChunk(%q) succeeded", bad)
		}
	}
	if _, err := MarshalActivityChunk(nil); err == nil {
		t.Error("MarshalActivityChunk of no entry succeeded")
	}
}

func FuzzUnmarshalActivityChunk(f *testing.F) {
	b, err := MarshalActivityChunk(sampleChunk())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{chunkMagic, ChunkFormat, 1, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := UnmarshalActivityChunk(b)
		if err != nil {
			return
		}
		again, err := MarshalActivityChunk(es)
		if err != nil {
			t.Fatalf("encoding a decoded chunk: %v", err)
		}
		es2, err := UnmarshalActivityChunk(again)
		if err != nil {
			t.Fatalf("re-decoding an encoded chunk: %v", err)
		}
		if diff := cmp.Diff(es2, es); diff != "" {
			t.Errorf("decode-encode-decode changed the chunk (-got +want):\n%s", diff)
		}
	})
}
