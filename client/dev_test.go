package client

import (
	"context"
	"testing"
	"time"
)

// TestDevClockRoutes: what AdvanceClock and DevClock send and make of the
// answer (the server's side is api/devclock_test.go).
func TestDevClockRoutes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 9, 0, 0, 123e6, time.UTC)
	runRoutes(t, []routeCase{
		{
			name:   "AdvanceClock",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.AdvanceClock(ctx, 72*time.Hour) },
			method: "POST", uri: "/nkms/v1/dev/clock",
			body: `{"advance":"72h0m0s"}`,
			data: `{"now":"2026-11-30T09:00:00.123Z","nowMillis":1796029200123,"offset":"72h0m0s","destroyed":1,"rotated":2,"failed":3,"pruned":4}`,
			want: &Clock{Now: now, Offset: 72 * time.Hour, Destroyed: 1, Rotated: 2, Failed: 3, Pruned: 4},
		},
		{
			name:   "DevClock",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DevClock(ctx) },
			method: "GET", uri: "/nkms/v1/dev/clock",
			data: `{"now":"2026-11-30T09:00:00.123Z","nowMillis":1796029200123,"offset":"1m30s"}`,
			want: &Clock{Now: now, Offset: 90 * time.Second},
		},
	})
}

// TestDevClockMalformedOffset: an answer whose offset is not a duration is
// an error, not a zero offset.
func TestDevClockMalformedOffset(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"now":"x","nowMillis":1,"offset":"soon"}`))
	if c, err := f.client(t).DevClock(t.Context()); err == nil {
		t.Fatalf("got %+v, want an error", c)
	}
}
