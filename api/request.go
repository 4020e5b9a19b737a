package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nkms/nkms"
)

// request is one API request parsed once, before anything else looks at it:
// its path values typed and normalized. Handlers read the body and the
// query from Request; the key they name is tag, never the raw path text.
type request struct {
	*http.Request
	tag     nkms.Tag // {keyTag}, canonical; zero on routes without one
	version int      // {version}; 0 on routes without one
}

// parseRequest parses the path values of r for route rt. A malformed keyTag
// is a key that does not exist (404), answered before any rate limiter,
// usage log, audit line or store sees it; a malformed version is 400.
// ri is r's reqInfo: the key tag comes from it when the fast table routed r.
func parseRequest(rt route, ps pathParams, r *http.Request, ri *reqInfo) (*request, error) {
	rq := &ri.rq // allocated with ri
	*rq = request{Request: r}
	if err := checkRequestLine(rt, r); err != nil {
		return nil, err
	}
	if ps.tag {
		raw := ri.keyTag
		if !ri.routed {
			raw = r.PathValue("keyTag")
		}
		tag, err := nkms.ParseTag(raw)
		if rt.kind.v3() && (rt.auth == authToken || rt.auth == authRefresh) && (err != nil || raw != tag.String()) {
			// 3.0 token routes take the tag exactly as issued (D9).
			return nil, errAuth("the keyTag of a token route must be the key's tag as issued (lower case)")
		}
		if err != nil {
			return nil, err
		}
		rq.tag = tag
	}
	if ps.version {
		n, err := parseVersion(r.PathValue("version"))
		if err != nil {
			return nil, err
		}
		rq.version = n
	}
	return rq, nil
}

// pathParams are the path values of a route's pattern: {keyTag}, {version}.
type pathParams struct{ tag, version bool }

// result is a handler's answer: the value of the success body's "data",
// and the facts of the call that the request did not carry.
type result struct {
	data    any
	tag     nkms.Tag // the key the call made (Create Key); zero: the request's
	version int      // the key version the call used; 0 when none or several
}

// handlerFunc handles one authenticated request.
type handlerFunc func(ctx context.Context, c nkms.Caller, rq *request) (result, error)

// outcome is what the audit line, the request log and the metrics learn of a
// request: who called, which key and version it used, and the code of its
// answer. Only serve (and, for requests that reach no route, ServeHTTP and
// unknownRoute) writes it, from the typed request, the authenticated caller
// and the handler's result; handlers and the error writer never touch it.
type outcome struct {
	caller  nkms.Caller
	tag     nkms.Tag
	version int
	code    string // the error code the answer carries; "" for a success
}

// reqInfo is what ServeHTTP hands down a request's context: its id (for
// every log line), when ServeHTTP took it (its time limit counts from
// then), the outcome its route fills in, and, when the fast table routed
// it (fastroute.go), its raw keyTag path value.
type reqInfo struct {
	id     string
	start  time.Time
	out    *outcome
	keyTag string
	routed bool    // by the fast table: keyTag holds the path value
	rq     request // the route's parsed request (parseRequest)
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{start: time.Now(), out: &outcome{}}
}

func requestID(ctx context.Context) string { return info(ctx).id }

// serve turns a route into an http.Handler: path values, body limit,
// authentication, rate limits, handler, answer. Authorization is the
// Service's: every handler calls one Service method, which checks the caller.
func (s *Server) serve(rt route) http.Handler {
	ps := pathParams{strings.Contains(rt.path, "{keyTag}"), strings.Contains(rt.path, "{version}")}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r.Context())
		out := ri.out
		fail := s.writeError
		if rt.kind.v3() {
			fail = s.writeErrorV3
		}
		rq, err := parseRequest(rt, ps, r, ri)
		if err != nil {
			out.code = fail(w, r, err)
			return
		}
		out.tag, out.version = rq.tag, rq.version
		r.Body = http.MaxBytesReader(w, r.Body, rt.limit)
		c, err := s.authenticateLimited(w, r, rt.auth, rq.tag)
		out.caller = c // the zero Caller when authentication failed: never a claimed, unverified access key
		if err == nil {
			err = s.rateLimit(w, c, rq.tag) // not executed, so not in the key's usage log
		}
		if err != nil {
			out.code = fail(w, r, err)
			return
		}
		ctx := r.Context()
		res, err := rt.handle(ctx, c, rq)
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // the client went away: the answer reaches no one
		}
		if err == nil && s.cfg.RequestTimeout > 0 && rt.kind != streamed && time.Since(ri.start) > s.cfg.RequestTimeout {
			// Done, but past the request's time limit: the write timeout
			// would cut the answer off, so it is not reported as served.
			err = errPastTimeLimit
		}
		if !res.tag.IsZero() {
			out.tag = res.tag
		}
		if res.version != 0 {
			out.version = res.version
		}
		if err != nil {
			out.code = fail(w, r, err)
			return
		}
		if rt.kind.v3() {
			answerV3(w, rt.kind, res.data)
			return
		}
		if raw, ok := res.data.(rawAnswer); ok { // a stream, not the JSON envelope (backup.go)
			out.code = raw.writeAnswer(w, r, s)
			return
		}
		writeSuccess(w, res.data, rt.kind == v1Body)
	})
}

// errPastTimeLimit fails a request that finished after Config.RequestTimeout.
var errPastTimeLimit = fmt.Errorf("request took longer than its time limit: %w", context.DeadlineExceeded)

// isTimeout reports whether err is the end of the request's context (the
// client went away) or its time limit.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
