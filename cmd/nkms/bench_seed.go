package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/server"
	"github.com/nkms/nkms/store/bolt"
)

// benchSeedCommand fills a stopped server's data dir with many keys, for
// scale measurements (bench/scale). It goes through Service.CreateKey, so
// the keys are exactly what the API would have made.
func benchSeedCommand(stdout, stderr io.Writer) *cobra.Command {
	var dataDir, rootKeyFile, keyType string
	var keys, workers int
	var keystore int64
	cmd := &cobra.Command{
		Use:    "bench-seed",
		Short:  "Create many keys directly in a data dir (the server must be stopped)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootKeyFile == "" {
				rootKeyFile = filepath.Join(dataDir, "root.key")
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			root, err := server.LoadRootKey(rootKeyFile)
			if err != nil {
				return err
			}
			st, err := bolt.Open(filepath.Join(dataDir, bolt.FileName), bolt.Options{})
			if err != nil {
				return &hintError{err, "stop the server that uses this --data-dir first"}
			}
			defer st.Close()
			svc := &nkms.Service{Store: st, Root: root, Now: time.Now}
			return seed(cmd.Context(), svc, nkms.Caller{Keystore: keystore, Role: nkms.RoleAdmin}, nkms.KeyType(keyType), keys, workers, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "./nkms-data", "data dir of a stopped server")
	f.StringVar(&rootKeyFile, "root-key-file", "", "root key file (default <data-dir>/root.key)")
	f.IntVar(&keys, "keys", 1000, "number of keys to create")
	f.IntVar(&workers, "workers", 8, "concurrent creators")
	f.Int64Var(&keystore, "keystore", 1, "keystore of the keys")
	f.StringVar(&keyType, "key-type", "AES256", "AES256, RSA2048 or ECDSA")
	return cmd
}

// seed creates the keys and prints the tag of the first one on stdout.
func seed(ctx context.Context, svc *nkms.Service, c nkms.Caller, typ nkms.KeyType, keys, workers int, stdout, stderr io.Writer) error {
	start := time.Now()
	var next, made atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	prefix := "s" + strconv.FormatInt(start.UnixNano()%1e6, 36)
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(keys) || ctx.Err() != nil {
					return
				}
				name := prefix + "-" + strconv.FormatInt(i, 36)
				k, err := svc.CreateKey(ctx, c, nkms.CreateKeyInput{Name: name, Type: typ})
				if err != nil {
					errs <- fmt.Errorf("create key %s: %w", name, err)
					return
				}
				if i == 1 {
					fmt.Fprintln(stdout, k.Tag)
				}
				if n := made.Add(1); n%10000 == 0 {
					fmt.Fprintf(stderr, "nkms: %d keys, %.0f/s\n", n, float64(n)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(stderr, "nkms: created %d keys in %v (%.0f/s)\n", made.Load(), d.Round(time.Millisecond), float64(made.Load())/d.Seconds())
	return ctx.Err()
}
