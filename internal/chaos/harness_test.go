package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// binary is the nkms binary, built once by TestMain (not with -short, when
// every test here skips).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "nkms-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = testkit.BuildNKMS(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipShort skips a chaos test with -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a chaos test (minutes of processes killed under load); runs without -short, as in CI")
	}
}

const (
	testAccessKey = "CHAOSACCESSKEY"
	testSecretKey = "chaos-secret-key-0123456789"
)

var credEnv = []string{"NKMS_ACCESS_KEY=" + testAccessKey, "NKMS_SECRET_KEY=" + testSecretKey}

// start runs `nkms server` on a free loopback port and waits until it serves.
func start(t *testing.T, dataDir string, env []string, args ...string) *testkit.Proc {
	t.Helper()
	return testkit.StartServer(t, binary, dataDir, env, args...)
}

// adminClient returns a client of p with the test's credentials.
func adminClient(t *testing.T, p *testkit.Proc, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(p.URL, testAccessKey, testSecretKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == 404 && ce.Code == "NOT_FOUND"
}

// pickPreferring returns a random one of keys for which ok holds, with
// probability prefer one for which good holds too (if there is one); the zero
// K if there is none. The load generators of both tests pick their keys so.
func pickPreferring[K any](rng *rand.Rand, keys []K, prefer float64, ok, good func(K) bool) K {
	var all, pref []K
	for _, k := range keys {
		if !ok(k) {
			continue
		}
		all = append(all, k)
		if good(k) {
			pref = append(pref, k)
		}
	}
	if len(pref) > 0 && rng.Float64() < prefer {
		return pref[rng.IntN(len(pref))]
	}
	if len(all) == 0 {
		var none K
		return none
	}
	return all[rng.IntN(len(all))]
}

// tally counts a run's requests by op and outcome.
type tally struct {
	acked, refused, unsure map[string]int
}

func newTally() tally {
	return tally{acked: map[string]int{}, refused: map[string]int{}, unsure: map[string]int{}}
}

// count counts one request of op. The caller holds the run's lock.
func (t *tally) count(op string, out outcome) {
	switch out {
	case acked:
		t.acked[op]++
	case refused:
		t.refused[op]++
	default:
		t.unsure[op]++
	}
}

// write writes to a run's report a line each of the acknowledged, refused
// and uncertain requests, counted by op.
func (t *tally) write(b *strings.Builder, ops []string) {
	for _, l := range []struct {
		title string
		m     map[string]int
	}{{"acknowledged", t.acked}, {"refused", t.refused}, {"uncertain", t.unsure}} {
		fmt.Fprintf(b, "  %-12s", l.title)
		n := 0
		for _, op := range ops {
			fmt.Fprintf(b, " %s %d,", op, l.m[op])
			n += l.m[op]
		}
		fmt.Fprintf(b, " total %d\n", n)
	}
}

// writeChecks writes to a run's report how many checks of each kind ran.
func writeChecks(b *strings.Builder, checks map[string]int) {
	n := 0
	b.WriteString("  checks:")
	for _, kind := range slices.Sorted(maps.Keys(checks)) {
		fmt.Fprintf(b, " %s %d,", kind, checks[kind])
		n += checks[kind]
	}
	fmt.Fprintf(b, " total %d", n)
}

// sendStateOp sends the state operation op (opDelete, opCancel, opEnable or
// opDisable) for the key tag.
func sendStateOp(ctx context.Context, c *client.Client, op, tag string) (*client.StatusChange, error) {
	switch op {
	case opDelete:
		return c.RequestDeletion(ctx, tag)
	case opCancel:
		return c.CancelDeletion(ctx, tag)
	case opEnable:
		return c.EnableKey(ctx, tag)
	case opDisable:
		return c.DisableKey(ctx, tag)
	}
	return nil, fmt.Errorf("no state operation %q", op)
}
