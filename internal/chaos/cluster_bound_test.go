package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nkms/nkms/client"
)

// clAnswerBound is how long a request in flight when the etcd raft leader
// dies may take to be answered, success or 503 (issue 15: 2s; the nodes run
// with the default --etcd-timeout of 1s); clAnswerSlack is added for a
// machine that runs three etcd members, three nodes and the load on two
// cores.
const (
	clAnswerBound = 2 * time.Second
	clAnswerSlack = 500 * time.Millisecond
)

// probeStats is what a probe saw: how many requests, the longest answer,
// and the failures.
type probeStats struct {
	n, ok, unavailable int
	longest            time.Duration
	longestWhat        string
	bad                []string // answers that are neither a success nor a 503
}

// probe sends, from one goroutine per node, an encrypt with tag and then a
// memo change of tag, over and over, each a single attempt (no retry), until
// stop is called; stop returns what they saw.
func (r *clRun) probe(tag string) (stop func() probeStats) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		st probeStats
	)
	for i := range r.nodes {
		r.nmu.Lock()
		p := r.nodes[i].cur.p
		r.nmu.Unlock()
		c := adminClient(r.t, p, client.WithRetries(1), client.WithHTTPClient(&http.Client{Timeout: 20 * time.Second}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				what := "encrypt"
				sent := time.Now()
				var err error
				if n%2 == 0 {
					_, err = c.Encrypt(context.Background(), tag, []byte("probe"), nil)
				} else {
					what = "memo change"
					_, err = c.UpdateMemo(context.Background(), tag, fmt.Sprintf("probe %d", n))
				}
				took := time.Since(sent)
				mu.Lock()
				st.n++
				var ce *client.Error
				switch {
				case err == nil:
					st.ok++
				case errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable:
					st.unavailable++
				default:
					st.bad = append(st.bad, fmt.Sprintf("%s on node %d at %s: %v", what, i, sent.Format(time.StampMilli), err))
				}
				if took > st.longest {
					st.longest, st.longestWhat = took, fmt.Sprintf("%s on node %d sent at %s", what, i, sent.Format(time.StampMilli))
				}
				mu.Unlock()
			}
		}()
	}
	return func() probeStats {
		cancel()
		wg.Wait()
		return st
	}
}
