package bolt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/nkms/nkms"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomTag(t testing.TB) string { return hex.EncodeToString(randomBytes(t, 32)) }

// inFile reports whether the data file at path holds marker, raw or in the
// base64 form that the record codec gives sealed bytes.
func inFile(t *testing.T, path string, marker []byte) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(data, marker) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(marker)))
}

// checkInFile fails the test unless the presence of marker in the file is want.
func checkInFile(t *testing.T, path string, marker []byte, want bool, when string) {
	t.Helper()
	if got := inFile(t, path, marker); got != want {
		t.Errorf("marker in data file %s: got %v, want %v", when, got, want)
	}
}

// createMarked stores a key whose sealed material is a fresh random marker.
func createMarked(t *testing.T, s *Store, name string) (*nkms.Key, []byte) {
	t.Helper()
	marker := randomBytes(t, 64)
	k, err := s.Create(t.Context(), testKey(t, 1, name, marker))
	if err != nil {
		t.Fatal(err)
	}
	return k, marker
}

func TestScrubCompact(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s := openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	kept, keptMarker := createMarked(t, s, "kept")
	k, marker := createMarked(t, s, "deleted")
	checkInFile(t, path, marker, true, "after Create")

	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, marker, true, "after Delete, before Compact (bbolt keeps freed pages)")
	if pending, err := s.scrubPending(); err != nil || !pending {
		t.Errorf("scrub pending after Delete = %v, %v; want true", pending, err)
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	checkInFile(t, path, marker, false, "after Compact")
	checkInFile(t, path, keptMarker, true, "after Compact (live key)")
	if pending, err := s.scrubPending(); err != nil || pending {
		t.Errorf("scrub pending after Compact = %v, %v; want false", pending, err)
	}
	if got, err := s.Get(t.Context(), kept.Tag); err != nil || !bytes.Equal(got.Versions[0].Sealed, keptMarker) {
		t.Errorf("Get of the live key after Compact: err %v", err)
	}
	if _, err := s.Create(t.Context(), testKey(t, 1, "deleted", nil)); err != nil {
		t.Errorf("Create with the deleted key's name after Compact: %v", err)
	}
}

func TestScrubOnClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	k, marker := createMarked(t, s, "deleted")
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, marker, true, "after Delete")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, marker, false, "after Close")
}

// TestScrubOnOpen simulates a crash between a Delete and its compaction: the
// file has the flag set and the material in freed pages; Open must scrub.
func TestScrubOnOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	crashy := Options{hooks: &hooks{noBackground: true, noCloseScrub: true}}
	s, err := Open(path, crashy)
	if err != nil {
		t.Fatal(err)
	}
	k, marker := createMarked(t, s, "deleted")
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, marker, true, "after Delete and a Close that skipped the scrub")
	// A leftover of a compaction that crashed must go too.
	if err := os.WriteFile(path+".compact", marker, 0o600); err != nil {
		t.Fatal(err)
	}

	var compactions atomic.Int32
	s = openTest(t, path, Options{hooks: &hooks{noBackground: true, compacted: func() { compactions.Add(1) }}})
	checkInFile(t, path, marker, false, "after Open")
	if n := compactions.Load(); n != 1 {
		t.Errorf("Open compacted %d times, want 1", n)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("leftover compaction file after Open: stat error %v, want not exist", err)
	}
	if _, err := s.Get(t.Context(), k.Tag); err == nil {
		t.Error("deleted key is back after Open")
	}
}

// TestScrubCoalesces deletes many keys while the background goroutine is held
// before its pass, then lets it go: that one pass scrubs them all.
func TestScrubCoalesces(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	release := make(chan struct{})
	passed := make(chan struct{}, 10)
	var compactions atomic.Int32
	s := openTest(t, path, Options{ScrubDelay: 1, hooks: &hooks{
		beforeScrub: func() { <-release },
		afterScrub:  func() { passed <- struct{}{} },
		compacted:   func() { compactions.Add(1) },
	}})
	const n = 20
	var markers [][]byte
	for i := range n {
		k, marker := createMarked(t, s, fmt.Sprintf("key%d", i))
		if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
			t.Fatal(err)
		}
		markers = append(markers, marker)
	}
	present := 0
	for _, m := range markers {
		if inFile(t, path, m) {
			present++
		}
	}
	if present == 0 {
		t.Fatal("no marker in the data file after the deletes: the test cannot see a scrub")
	}
	close(release)
	<-passed // the first background pass, which saw every delete
	if got := compactions.Load(); got != 1 {
		t.Errorf("the first background pass after %d deletes compacted %d times, want 1", n, got)
	}
	for i, m := range markers {
		checkInFile(t, path, m, false, fmt.Sprintf("after the background compaction (key %d)", i))
	}
}

func TestScrubAfterAccessKeyReplace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	old := randomBytes(t, 64)
	a := &nkms.AccessKey{ID: "NKscrub", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: old}
	if err := s.PutAccessKey(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	a.SealedSecret = randomBytes(t, 64)
	if err := s.PutAccessKey(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, old, true, "after replacing the access key")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, old, false, "after Close")
	checkInFile(t, path, a.SealedSecret, true, "after Close (current secret)")
}
