package server

import (
	"log/slog"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
)

// openAuditLog opens --audit-log, if given, and logs the head of its chain
// (seq and hash of the last line) when it opens and when it closes: a record
// of the head outside the file, against lines cut off its end.
func openAuditLog(cfg Config, log *slog.Logger) (api.Auditor, func(), error) {
	if cfg.AuditLog == "" {
		return nil, func() {}, nil
	}
	l, err := audit.Open(cfg.AuditLog, audit.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	seq, head := l.Head()
	log.Info("audit log open", "file", cfg.AuditLog, "lines", seq, "head", head, "failClosed", cfg.AuditFailClosed)
	return l, func() {
		seq, head := l.Head()
		if err := l.Close(); err != nil {
			log.Error("audit log close", "file", cfg.AuditLog, "err", err)
		}
		log.Info("audit log closed", "file", cfg.AuditLog, "lines", seq, "head", head)
	}, nil
}
