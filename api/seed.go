package api

import (
	"context"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/seed"
)

// exportSeed is GET /nkms/v1/seed[?material=true]: the declarations of
// this server, in the shape of a seed file (internal/seed.File), for an
// operator. With material=true, every key version's material and every
// access key's secret in plaintext, when the server allows it
// (--allow-material-export; else 403 FORBIDDEN naming the flag).
func (s *Server) exportSeed(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var material bool
	switch v := rq.URL.Query().Get("material"); v {
	case "", "false":
	case "true":
		material = true
	default:
		return result{}, nkms.FieldErrorf("material", "material must be true or false")
	}
	x, err := s.svc.ExportSeed(ctx, c, material)
	if err != nil {
		return result{}, err
	}
	return result{data: seed.FromExport(x)}, nil
}
