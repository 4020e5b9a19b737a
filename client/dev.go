package client

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Clock is what the dev clock of a server started with `nkms server
// --dev-clock` says: its time (the time of every date the API answers) and
// how far ahead of the wall clock it is. After AdvanceClock, the counts say
// what the scheduler pass run at the new time did.
type Clock struct {
	Now       time.Time     // UTC, millisecond precision
	Offset    time.Duration // ahead of the server's wall clock
	Destroyed int           // keys destroyed: their pending-deletion window had passed
	Rotated   int           // keys auto-rotated: their rotation date had come
	Failed    int           // keys the pass could not destroy or rotate (the server logs why)
	Pruned    int           // usage-log entries past their retention, removed
}

// clockWire is the data of the dev clock routes.
type clockWire struct {
	NowMillis int64  `json:"nowMillis"`
	Offset    string `json:"offset"`
	Destroyed int    `json:"destroyed"`
	Rotated   int    `json:"rotated"`
	Failed    int    `json:"failed"`
	Pruned    int    `json:"pruned"`
}

func (w clockWire) clock() (*Clock, error) {
	off, err := time.ParseDuration(w.Offset)
	if err != nil {
		return nil, fmt.Errorf("client: malformed dev clock offset: %w", err)
	}
	return &Clock{Now: time.UnixMilli(w.NowMillis).UTC(), Offset: off,
		Destroyed: w.Destroyed, Rotated: w.Rotated, Failed: w.Failed, Pruned: w.Pruned}, nil
}

// AdvanceClock moves the server's dev clock forward by d (POST
// /nkms/v1/dev/clock {"advance": d}) and returns it once the server has run
// a scheduler pass at the new time: every key whose pending-deletion window
// or rotation period the move passed is destroyed or rotated by then. It
// needs an operator's access key (an admin of keystore 1) and a server
// started with --dev-clock (without it the route does not exist: 404). d
// must be positive; the server refuses more than 100 years in all. This is
// an nkms test route; NAVER Cloud KMS does not have it. It is not retried.
func (c *Client) AdvanceClock(ctx context.Context, d time.Duration) (*Clock, error) {
	body := struct {
		Advance string `json:"advance"`
	}{d.String()}
	var w clockWire
	if err := c.Do(ctx, http.MethodPost, "/nkms/v1/dev/clock", body, &w); err != nil {
		return nil, err
	}
	return w.clock()
}

// DevClock returns what the server's dev clock says (GET /nkms/v1/dev/clock;
// any access key may ask). Without --dev-clock the route does not exist: 404.
func (c *Client) DevClock(ctx context.Context) (*Clock, error) {
	var w clockWire
	if err := c.Do(ctx, http.MethodGet, "/nkms/v1/dev/clock", nil, &w); err != nil {
		return nil, err
	}
	return w.clock()
}
