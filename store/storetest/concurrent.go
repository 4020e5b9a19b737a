package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/nkms/nkms"
)

func testConcurrentUpdate(t *testing.T, s nkms.Store) {
	const n = 50
	k := newKey(t, 1, "counter")
	k.Memo = "0"
	k = create(t, s, k)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Update(t.Context(), k.Tag, func(k *nkms.Key) error {
				c, err := strconv.Atoi(k.Memo)
				if err != nil {
					return err
				}
				k.Memo = strconv.Itoa(c + 1)
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	if got, want := get(t, s, k.Tag).Memo, strconv.Itoa(n); got != want {
		t.Errorf("counter after %d concurrent increments = %s, want %s", n, got, want)
	}
}

func testConcurrentCreateSameName(t *testing.T, s nkms.Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		k := newKey(t, 1, []string{"race", "RACE", "Race"}[i%3])
		wg.Go(func() {
			_, err := s.Create(t.Context(), k)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, nkms.ErrNameConflict):
			t.Errorf("Create: got error %v, want nil or %v", err, nkms.ErrNameConflict)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent Creates of one name succeeded, want 1", won, n)
	}
	if _, total, err := s.List(t.Context(), 1, 1, n); err != nil || total != 1 {
		t.Errorf("List after the race: total %d, err %v; want 1, nil", total, err)
	}
}
