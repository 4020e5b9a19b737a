package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"

	"github.com/nkms/nkms/client"
)

// TestOwnConnectionPool: closing http.DefaultTransport's idle connections
// (as httptest.Server.Close does, in the test suites of applications that
// use this client) leaves the client's connections alone: its next request
// reuses its connection. When the client shared http.DefaultTransport, a
// request that had just taken an idle connection failed with "http:
// CloseIdleConnections called" (seen in CI, client/kmsv3's e2e test).
func TestOwnConnectionPool(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "POOLTEST", "pool-test-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	})
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if !reused {
		t.Fatal("closing http.DefaultTransport's idle connections closed the client's connection")
	}
}
