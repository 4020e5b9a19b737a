package server

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/seed"
)

// readSeed reads and checks the --seed file, before the server writes
// anything: a bad file stops the start with every problem and its line.
func readSeed(cfg Config) (*nkms.Seed, error) {
	if cfg.Seed == "" {
		return nil, nil
	}
	f, err := os.Open(cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("--seed: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, seed.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("--seed %s: %w", cfg.Seed, err)
	}
	lookup := cfg.SeedEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	sd, err := seed.Parse(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("--seed %s: %w", cfg.Seed, err)
	}
	return &sd, nil
}

// declaresOperator reports whether sd declares an admin of keystore 1: then
// no first access key is generated.
func declaresOperator(sd *nkms.Seed) bool {
	if sd == nil {
		return false
	}
	for _, a := range sd.AccessKeys {
		if a.Keystore == nkms.BootstrapKeystore && a.Role == nkms.RoleAdmin {
			return true
		}
	}
	return false
}

// applySeed applies the declarations and says on stderr what it did, and
// warns when operators may export material.
func applySeed(ctx context.Context, svc *nkms.Service, cfg Config, sd *nkms.Seed, logOut *logBuffer, stderr io.Writer) error {
	if cfg.AllowMaterialExport {
		fmt.Fprintln(stderr, "nkms: WARNING: --allow-material-export: operators (admins of keystore 1) can export every key's material and every access key's secret in plaintext (nkms seed export --material); use it only for test data")
	}
	if sd == nil {
		return nil
	}
	rep, err := svc.ApplySeed(ctx, *sd)
	logOut.Flush()
	if err != nil {
		return fmt.Errorf("--seed %s: %w", cfg.Seed, err)
	}
	fmt.Fprintf(stderr, "nkms: seed %s: %d created, %d already present\n", cfg.Seed,
		rep.Count(nkms.SeedCreated), rep.Count(nkms.SeedPresent))
	return nil
}
