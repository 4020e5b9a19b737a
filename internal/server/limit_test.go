package server

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
)

// pipeListener is a net.Listener of in-memory connections (net.Pipe), so
// that a synctest bubble sees every wait as a channel operation.
type pipeListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// dial connects to the listener; the connection waits to be accepted as a
// TCP connection waits in the listen backlog.
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	go func() {
		select {
		case l.conns <- server:
		case <-l.done:
			server.Close()
		}
	}()
	return client
}

// get sends a GET over c and delivers the status of its answer on the
// returned channel (0 when the connection ends first).
func get(c net.Conn) <-chan int {
	status := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://nkms/healthz", nil)
		if err := req.Write(c); err != nil {
			status <- 0
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// TestMaxConnections: with a cap of n, n connections are served and kept
// open (keep-alive); connection n+1 is not answered while they are open,
// and is answered as soon as one of them closes.
func TestMaxConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		inner := newPipeListener()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(limitConnections(inner, n)) }()
		var conns []net.Conn
		t.Cleanup(func() { // inside the bubble: every goroutine of the test ends
			srv.Close()
			for _, c := range conns {
				c.Close()
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v, want http.ErrServerClosed", err)
			}
		})
		dial := func() net.Conn {
			c := inner.dial()
			conns = append(conns, c)
			return c
		}

		var open []net.Conn
		for i := range n {
			c := dial()
			if got := <-get(c); got != http.StatusOK {
				t.Fatalf("connection %d: status %d, want 200", i+1, got)
			}
			open = append(open, c) // kept alive by the server
		}
		extra := dial()
		answer := get(extra)
		synctest.Wait() // everything that can happen has happened
		select {
		case got := <-answer:
			t.Fatalf("connection %d answered (%d) while %d were open; want it to wait", n+1, got, n)
		default:
		}

		open[0].Close()
		if got := <-answer; got != http.StatusOK {
			t.Fatalf("connection %d after one closed: status %d, want 200", n+1, got)
		}

	})
}

// TestMaxConnectionsZero: 0 is no cap; the listener is left as it is.
func TestMaxConnectionsZero(t *testing.T) {
	ln := newPipeListener()
	if got := limitConnections(ln, 0); got != net.Listener(ln) {
		t.Fatalf("limitConnections(ln, 0) = %T, want ln itself", got)
	}
}
