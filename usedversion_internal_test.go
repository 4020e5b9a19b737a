package nkms

import "testing"

// TestUsedVersion: every crypto operation's result gives the usage log the
// key version it used; other results give 0.
func TestUsedVersion(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{Ciphertexts{Version: 2}, 2}, {Plaintexts{Version: 3}, 3}, {Signature{Version: 4}, 4},
		{Verification{Version: 5}, 5}, {PublicKey{Version: 6}, 6}, {&CustomKey{Version: 7}, 7},
		{(*CustomKey)(nil), 0}, {&Key{}, 0}, {"x", 0}, {nil, 0},
	} {
		if got := usedVersion(tc.v); got != tc.want {
			t.Errorf("usedVersion(%#v) = %d, want %d", tc.v, got, tc.want)
		}
	}
}
