package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/nkms/nkms"
)

// rawAnswer is a handler's answer that is not the JSON envelope: it writes
// the whole response itself (status, headers, body, or an error body) and
// returns the error code it answered with ("" for a success). serve calls
// writeAnswer in place of writeJSON.
type rawAnswer interface {
	writeAnswer(w http.ResponseWriter, r *http.Request, s *Server) (code string)
}

// backupWriteWindow is how long one chunk of a backup stream may take to
// write: each write moves the connection's write deadline this far ahead, so
// a large backup outlives the server's WriteTimeout while a stalled client
// is still cut off.
const backupWriteWindow = 30 * time.Second

// errBackupUnsupported answers a backup on a store that nkms cannot copy (etcd).
func errBackupUnsupported(details string) error {
	return &gatewayError{http.StatusNotImplemented, "501", "Not Implemented", details}
}

// backup is GET /nkms/v1/backup: a consistent copy of the whole data file,
// as application/octet-stream, for an admin of keystore 1. Key material in
// it is sealed; the root key is not in it.
func (s *Server) backup(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	if err := s.svc.BackupAllowed(c); errors.Is(err, nkms.ErrBackupUnsupported) {
		return result{}, errBackupUnsupported(nkms.ErrorMessage(err))
	} else if err != nil {
		return result{}, err
	}
	return result{data: backupAnswer{svc: s.svc, c: c}}, nil
}

// backupAnswer streams a snapshot of the store.
type backupAnswer struct {
	svc *nkms.Service
	c   nkms.Caller
}

func (a backupAnswer) writeAnswer(w http.ResponseWriter, r *http.Request, s *Server) string {
	started := false
	var sent int64
	err := a.svc.Backup(r.Context(), a.c, func(sn nkms.Snapshot) error {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(sn.Size(), 10))
		h.Set("Content-Disposition", `attachment; filename="`+sn.FileName()+`"`)
		h.Set("Cache-Control", "no-store")
		// With an audit log, its line is written now rather than after a
		// stream held whole in memory.
		if err := startStream(w, r, http.StatusOK); err != nil {
			h.Del("Content-Type")
			h.Del("Content-Length")
			h.Del("Content-Disposition")
			return err
		}
		w.WriteHeader(http.StatusOK)
		started = true
		var err error
		sent, err = sn.WriteTo(&deadlineWriter{w: w, rc: http.NewResponseController(w)})
		return err
	})
	switch {
	case err == nil:
		s.log.Info("backup sent", "requestId", requestID(r.Context()), "bytes", sent, "by", a.c.AccessKey)
	case !started:
		return s.writeError(w, r, err)
	default:
		// The body is shorter than its Content-Length: net/http closes the
		// connection, and the client sees a cut answer, never a whole one.
		s.log.Error("backup stream cut", "requestId", requestID(r.Context()), "bytes", sent, "err", err)
	}
	return ""
}

// deadlineWriter moves the connection's write deadline before every write.
// Where the writer chain does not support deadlines, the server's
// WriteTimeout stays in force.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(backupWriteWindow)) // http.ErrNotSupported: keep WriteTimeout
	return d.w.Write(p)
}
