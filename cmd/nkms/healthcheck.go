package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCommand is `nkms healthcheck`: one GET of the server's
// /healthz, for a container's HEALTHCHECK (a minimal image has no curl).
// It exits 0 when the answer is 200 "ok", and otherwise fails with a
// one-line reason. It sends no credentials: /healthz is unauthenticated.
func healthcheckCommand(c *cli) *cobra.Command {
	var target, caCert string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that a server answers /healthz (exit 0 when it is ready)",
		Long: `Check that a server answers GET /healthz with 200 "ok": exit 0 when it
does, 1 with a one-line reason when it does not (not listening, unready,
a TLS failure, no answer within --timeout). For a container's HEALTHCHECK.

A server started with --dev serves HTTPS with a self-signed certificate
kept in its data dir; trust it with --ca-cert:

  nkms healthcheck --url https://127.0.0.1:8383 --ca-cert /data/dev-tls-cert.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				target = c.getenv("NKMS_ENDPOINT")
			}
			if target == "" {
				target = defaultEndpoint
			}
			if caCert == "" {
				caCert = c.getenv("NKMS_CA_CERT")
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %v: must be positive", timeout)
			}
			if err := healthcheck(cmd.Context(), target, caCert, timeout); err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, "ok")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "base URL of the server (env NKMS_ENDPOINT; default "+defaultEndpoint+")")
	f.StringVar(&caCert, "ca-cert", "", "PEM file of the certificates to trust for https, e.g. <data-dir>/dev-tls-cert.pem of a --dev server (env NKMS_CA_CERT)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "longest wait for the answer, connection included")
	return cmd
}

// healthcheck sends one GET of base's /healthz (a path prefix of base is
// kept) and returns nil when it answers 200 "ok" within timeout.
func healthcheck(ctx context.Context, base, caCert string, timeout time.Duration) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Not echoed: a mistyped URL may hold a password.
		return errors.New("--url: want http://HOST:PORT or https://HOST:PORT (and an optional path prefix)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/healthz"
	u.RawPath = ""
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	if caCert != "" {
		pool, err := readCertPool(caCert)
		if err != nil {
			return err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// /healthz does not redirect; a redirect is some other server.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("unhealthy: %s: no answer within %v", u, timeout)
		}
		return fmt.Errorf("unhealthy: %w", err)
	}
	defer resp.Body.Close()
	// The answer is "ok" or "unready: <reason>"; more is not a health answer.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return fmt.Errorf("unhealthy: %s: reading the answer: %w", u, err)
	}
	text := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusOK && text == "ok":
		return nil
	case resp.StatusCode == http.StatusBadRequest && u.Scheme == "http" && strings.Contains(text, "HTTPS server"):
		return &hintError{fmt.Errorf("unhealthy: %s: the server speaks HTTPS", u),
			"use --url https://... and, for a --dev server, --ca-cert <data-dir>/dev-tls-cert.pem"}
	default:
		return fmt.Errorf("unhealthy: %s answered %s: %q", u, resp.Status, clip(oneLine(text), 200))
	}
}

// oneLine joins the lines of s with spaces, so that a reason stays one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
