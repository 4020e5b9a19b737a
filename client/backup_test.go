package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nkms/nkms/internal/sigv2"
)

// backupServer answers GET /nkms/v1/backup with answer, after checking the
// signature; it counts the requests.
func backupServer(t *testing.T, answer http.HandlerFunc) (*Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/nkms/v1/backup" {
			t.Errorf("request %s %s, want GET /nkms/v1/backup", r.Method, r.URL.Path)
		}
		if r.Header.Get(sigv2.HeaderAccessKey) != testAccessKey || r.Header.Get(sigv2.HeaderSignatureV2) == "" {
			t.Errorf("request not signed: %v", r.Header)
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, testAccessKey, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return c, &n
}

func TestBackupStreams(t *testing.T) {
	t.Parallel()
	file := bytes.Repeat([]byte("page"), 100_000)
	c, _ := backupServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(file)
	})
	var got bytes.Buffer
	n, err := c.Backup(context.Background(), &got)
	if err != nil || n != int64(len(file)) || !bytes.Equal(got.Bytes(), file) {
		t.Errorf("Backup = %d, %v; got %d bytes, want %d", n, err, got.Len(), len(file))
	}
}

func TestBackupFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		check  func(error) bool
	}{
		{"refused", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"errorCode":"210","message":"Permission Denied","details":"no"}}`))
		}, func(err error) bool {
			var ae *Error
			return errors.As(err, &ae) && ae.Status == 401 && ae.ErrorCode == "210"
		}},
		{"not a stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"code":"SUCCESS","data":null}`))
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "not a backup stream") }},
		{"cut short", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 1000)) // the server closes the connection: fewer bytes than declared
		}, func(err error) bool { return err != nil && strings.Contains(err.Error(), "cut") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, n := backupServer(t, tc.answer)
			_, err := c.Backup(context.Background(), &bytes.Buffer{})
			if !tc.check(err) {
				t.Errorf("Backup: %v", err)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d requests, want 1: a backup is never retried", got)
			}
		})
	}
}
