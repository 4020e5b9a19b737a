package kubekms

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	kmsapi "k8s.io/kms/apis/v2"
	kmsservice "k8s.io/kms/pkg/service"
)

// maxSocketPath is the longest path a Unix socket can be bound to on
// Linux (sun_path is 108 bytes with its final NUL).
const maxSocketPath = 107

// SocketPath returns the file path of a --listen value "unix:///path" (the
// form of the endpoint in kube-apiserver's EncryptionConfiguration; a bare
// absolute path is taken too). Linux abstract sockets ("unix:///@name")
// are refused: they have no file mode, so any process of the network
// namespace could ask the plugin to decrypt.
func SocketPath(listen string) (string, error) {
	path := listen
	if rest, ok := strings.CutPrefix(listen, "unix://"); ok {
		path = rest
	} else if strings.Contains(listen, "://") {
		return "", fmt.Errorf("--listen %q: want unix:///path/to/kms.sock", clip(listen, 80))
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("--listen %q: want an absolute path, unix:///path/to/kms.sock", clip(listen, 80))
	}
	path = filepath.Clean(path)
	if strings.HasPrefix(path, "/@") {
		// kube-apiserver would dial the abstract socket "@name" for this endpoint.
		return "", errors.New("--listen: an abstract socket (unix:///@name) has no file mode to keep other processes out; give a file path")
	}
	return path, nil
}

// Listen creates the Unix socket at path with mode 0600, so that only its
// owner (kube-apiserver runs as root, as the plugin does) can connect; its
// directory is made (mode 0700) when missing. A socket file that nothing
// listens on any longer (left by a plugin that was killed) is removed
// first; a socket that answers, or a file that is not a socket, is left
// alone and Listen fails. The socket is bound in a new directory of mode
// 0700 beside path and renamed into place, so it is never reachable with a
// wider mode. Closing the listener removes the socket file.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".k")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bind := filepath.Join(tmp, "s")
	if len(bind) > maxSocketPath || len(path) > maxSocketPath {
		return nil, fmt.Errorf("socket path %s is too long: a Unix socket path has at most %d bytes (and the plugin needs %d more to create it safely)",
			path, maxSocketPath, len(bind)-len(path))
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bind, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(bind, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(bind, path); err != nil {
		ln.Close()
		return nil, err
	}
	st, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &socketListener{UnixListener: ln, path: path, file: st}, nil
}

// removeStaleSocket removes the socket at path when nothing accepts
// connections on it.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another --listen path", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("another process listens on %s (a plugin already running?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check the socket %s left from before: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// socketListener removes its socket file when closed, if the file is still
// the one it made.
type socketListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo
	once sync.Once
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if st, serr := os.Lstat(l.path); serr == nil && os.SameFile(st, l.file) {
			if rerr := os.Remove(l.path); rerr != nil && err == nil {
				err = rerr
			}
		}
	})
	return err
}

// shutdownGrace bounds how long Serve waits for calls in flight when ctx ends.
const shutdownGrace = 5 * time.Second

// Serve answers the KMS v2 gRPC service of p (k8s.io/kms's own server
// adapter) on ln until ctx ends, then lets the calls in flight finish (for
// at most a few seconds) and closes ln, which removes a socket made by
// Listen. It returns nil after ctx ended, or the error that stopped serving.
func Serve(ctx context.Context, ln net.Listener, p *Plugin, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gs := grpc.NewServer(grpc.ConnectionTimeout(p.timeout))
	kmsapi.RegisterKeyManagementServiceServer(gs, kmsservice.NewGRPCService(ln.Addr().String(), p.timeout, p))
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		log.Info("kms plugin stopping")
		graceful := make(chan struct{})
		go func() { gs.GracefulStop(); close(graceful) }()
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-graceful:
		case <-t.C:
			gs.Stop()
		}
	}()
	err := gs.Serve(ln)
	close(done)
	<-stopped
	ln.Close() // grpc closed it already; this removes the socket file
	if ctx.Err() != nil {
		return nil
	}
	return err
}
