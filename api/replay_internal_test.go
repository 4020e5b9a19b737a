package api

import (
	"strconv"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

func TestReplayCacheForgetsStaleSignatures(t *testing.T) {
	var c replayCache
	now := time.Date(2026, 11, 27, 9, 0, 30, 0, time.UTC)
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	if !c.firstUse("AK", "sig", ts, now) || c.firstUse("AK", "sig", ts, now.Add(4*time.Minute)) {
		t.Fatal("a signature is not refused on its second use within the window")
	}
	if !c.firstUse("AK2", "sig", ts, now) || !c.firstUse("AK", "sig2", ts, now) {
		t.Fatal("another access key's or another signature's first use is refused")
	}
	// Past the window (when CheckTimestamp already refuses it) the entry goes.
	later := now.Add(sigv2.MaxSkew + time.Minute)
	c.firstUse("AK", "other", strconv.FormatInt(later.UnixMilli(), 10), later)
	if len(c.byMinute) != 1 {
		t.Fatalf("%d expiry minutes kept after the window, want only the new one", len(c.byMinute))
	}
}
