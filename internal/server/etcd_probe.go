//go:build !noetcd

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// etcdProbeTimeout bounds probeEtcd, which runs only once opening the
// store has failed.
const etcdProbeTimeout = 3 * time.Second

// etcdOpenError is the error of nkms server when the etcd store did not
// open with err. The etcd client retries a failed TLS handshake until its
// context ends and then says only "context deadline exceeded"; so each
// endpoint is asked for /health over a connection made as the client makes
// it, and what refused it (an untrusted certificate, a client certificate
// etcd wants, a member that is down) is added to err with a hint for it.
func etcdOpenError(ctx context.Context, err error, endpoints []string, conf *tls.Config) error {
	hint := "check --etcd-endpoints and the etcd TLS options; every member named must be reachable from this node"
	if ctx.Err() != nil {
		return &hintError{err, hint}
	}
	perr := probeEtcd(ctx, endpoints, conf)
	if perr == nil {
		return &hintError{err, hint}
	}
	var opErr *net.OpError
	switch {
	case errors.As(perr, new(x509.UnknownAuthorityError)), errors.As(perr, new(x509.HostnameError)),
		errors.As(perr, new(x509.CertificateInvalidError)):
		hint = "--etcd-ca-cert must name the CA that signed the etcd members' certificates, which must be valid for the hosts of --etcd-endpoints"
	case errors.As(perr, &opErr) && opErr.Op == "remote error":
		hint = "etcd refused this node's TLS client: with --client-cert-auth it wants --etcd-cert and --etcd-key, a client certificate signed by a CA of its --trusted-ca-file"
	case errors.Is(perr, errPlainClosed):
		hint = "if the etcd members serve TLS, give their URLs as https:// in --etcd-endpoints, with --etcd-ca-cert"
	}
	return &hintError{fmt.Errorf("%w: %w", err, perr), hint}
}

// errPlainClosed is the probe's error for a member that closed a plain
// HTTP connection without an answer, as one that serves only TLS does.
var errPlainClosed = errors.New("closed the plain HTTP connection without an answer")

// probeEtcd gets /health of every endpoint at once, as the etcd client
// would connect to it (TLS with conf for https://, plain for http://), and
// returns the failures of the connections, one line an endpoint; nil if
// every member answered at all, whatever its health.
func probeEtcd(ctx context.Context, endpoints []string, conf *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, etcdProbeTimeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: conf.Clone(), DisableKeepAlives: true}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	errs := make([]error, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			if err := probeEtcdMember(ctx, hc, ep); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ep, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// probeEtcdMember gets /health of one endpoint; only a failure to get an
// answer is an error.
func probeEtcdMember(ctx context.Context, hc *http.Client, ep string) error {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil // not a URL this probe understands; the client's error stands
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+"/health", nil)
	if err != nil {
		return nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		if u.Scheme == "http" && errors.Is(err, io.EOF) {
			return errPlainClosed
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return uerr.Err // without the repeated URL
		}
		return err
	}
	resp.Body.Close()
	return nil
}
