package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nkms/nkms/client/internal/httpx"
)

// Backup downloads a consistent copy of the server's data file (GET
// /nkms/v1/backup; an admin access key of keystore 1 only) and writes it to
// w. It returns the number of bytes written. Key material in the copy is
// sealed under the server's root key, which the copy does not hold: keep the
// root key file backed up separately.
//
// The request is sent once, never retried (w may already hold part of an
// answer), and is bounded by ctx only: a large data file may take longer
// than the client's usual 30-second timeout. An answer cut short is an
// error, so a nil error means w got the whole file the server announced.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	const path = "/nkms/v1/backup"
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/octet-stream")
	c.authenticate(req, time.Time{}) // one attempt
	hc := *c.hc
	hc.Timeout = 0 // ctx bounds the download
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxResponse))
		return 0, parseError(resp.StatusCode, body, c.token)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/octet-stream") {
		return 0, fmt.Errorf("client: GET %s: answer is %q, not a backup stream", path, ct)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: GET %s: backup cut after %d bytes: %w", path, n, err)
	}
	if want, perr := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); perr == nil && n != want {
		return n, fmt.Errorf("client: GET %s: backup cut after %d of %d bytes", path, n, want)
	}
	return n, nil
}
