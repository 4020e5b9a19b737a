package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// ceilingBody is what the ceiling server answers: an encrypt answer's shape.
const ceilingBody = `{"code":"SUCCESS","data":{"ciphertext":"ncpkms:v1:AAAA"}}`

// benchCeilingCommand serves a fixed JSON answer with a bare net/http
// server, the best that nkms could do on the same machine: what
// `nkms bench --op ceiling` measures.
func benchCeilingCommand(stderr io.Writer) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "bench-ceiling",
		Short:  "Serve a fixed JSON answer to every POST, for nkms bench --op ceiling",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serveCeiling(cmd.Context(), listen, stderr)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on (:0 picks a free port; the address is printed)")
	return cmd
}

func serveCeiling(ctx context.Context, listen string, stderr io.Writer) error {
	mux := http.NewServeMux()
	body := []byte(ceilingBody)
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // read the request as nkms does
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{ // the timeouts of nkms server
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.New(slog.NewTextHandler(stderr, nil)).Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "nkms: serving on http://%s (bench ceiling: a fixed JSON answer)\n", ln.Addr())
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
