package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/nkms/nkms/internal/loadgen"
	"github.com/nkms/nkms/internal/sigv2"
)

// writeWrkScript prints a wrk Lua script that sends req with one signature
// made at now: the server accepts it again and again for the 5 minutes of
// its timestamp window. Run it as `wrk -s FILE URL-of-the-server`.
func writeWrkScript(w io.Writer, req loadgen.Request, accessKey string, secret []byte, now time.Time) error {
	u, err := url.Parse(req.URL)
	if err != nil {
		return err
	}
	uri := u.EscapedPath()
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig := sigv2.Sign(secret, req.Method, uri, ts, accessKey)
	lua := func(s string) string { return strconv.Quote(s) } // Go quoting is valid Lua for these ASCII values
	_, err = fmt.Fprintf(w, `-- nkms bench --format wrk: one request, signed at %s; valid for 5 minutes.
wrk.method = %s
wrk.path = %s
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers[%s] = %s
wrk.headers[%s] = %s
wrk.headers[%s] = %s
`, now.UTC().Format(time.RFC3339), lua(req.Method), lua(uri), lua(string(req.Body)),
		lua(sigv2.HeaderTimestamp), lua(ts), lua(sigv2.HeaderAccessKey), lua(accessKey), lua(sigv2.HeaderSignatureV2), lua(sig))
	return err
}
