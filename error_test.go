package nkms_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nkms/nkms"
)

// TestErrorIsByKind: errors.Is matches sentinels by identity and code-only
// targets by code, never by message text.
func TestErrorIsByKind(t *testing.T) {
	t.Parallel()
	lookalike := &nkms.Error{Code: nkms.NotFound, Message: nkms.ErrKeyNotFound.Message}
	for name, tc := range map[string]struct {
		err, target error
		want        bool
	}{
		"sentinel itself":           {nkms.ErrKeyNotFound, nkms.ErrKeyNotFound, true},
		"wrapped sentinel":          {fmt.Errorf("get: %w", nkms.ErrKeyNotFound), nkms.ErrKeyNotFound, true},
		"cause of an Error":         {&nkms.Error{Code: nkms.Internal, Message: "x", Err: nkms.ErrVersionNotFound}, nkms.ErrVersionNotFound, true},
		"same code, other sentinel": {nkms.ErrVersionNotFound, nkms.ErrKeyNotFound, false},
		"same message, not it":      {lookalike, nkms.ErrKeyNotFound, false},
		"code-only target":          {nkms.ErrVersionNotFound, &nkms.Error{Code: nkms.NotFound}, true},
		"code-only, other code":     {nkms.ErrInvalidStatus, &nkms.Error{Code: nkms.NotFound}, false},
	} {
		if got := errors.Is(tc.err, tc.target); got != tc.want {
			t.Errorf("%s: errors.Is = %v, want %v", name, got, tc.want)
		}
	}
}
