package mem_test

import (
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/mem"
	"github.com/nkms/nkms/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nkms.Store {
		s := mem.New()
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
