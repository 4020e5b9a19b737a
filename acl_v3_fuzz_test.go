package nkms_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/nkms/nkms"
)

// FuzzACLEntryV3 checks ValidateACLEntry and Key.AllowsIP on arbitrary API
// 3.0 entries (addresses, CIDR prefixes with host bits, "*" octets) and
// addresses: no panic; "*" and "/" together are refused; an accepted entry
// is stored exactly as sent; and a key whose enabled ACL holds just that
// entry allows exactly the addresses it names: a prefix's addresses, an
// address itself, or for "*" octets the addresses that share the others.
func FuzzACLEntryV3(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "10.0.0.1/32", "10.3.0.1/24", "0.0.0.0/0", "10.*.*.*", "*.*.*.*", "192.168.*.1", "1.2.3.*",
		"10.*.0.0/16", "10.**.0.1", "10.*.0", "10.*.0.1.", "010.0.0.1", "10.0.0.256", "*", "*/8", "1.2.3.4/33",
		"::1", "::ffff:10.0.0.1", "10.0.0.1%eth0", "", " 10.0.0.1", "10.0.0.-1", "10.0.0.+1", "10.0.0.1e0", "１.2.3.*",
	} {
		f.Add(s, []byte{10, 0, 0, 1})
		f.Add(s, []byte{192, 168, 7, 1})
		f.Add(s, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice())
	}
	f.Fuzz(func(t *testing.T, entry string, raw []byte) {
		err := nkms.ValidateACLEntry(entry)
		if strings.Contains(entry, "*") && strings.Contains(entry, "/") && err == nil {
			t.Fatalf("ValidateACLEntry(%q) accepted * with /", entry)
		}
		if err != nil {
			if nkms.ErrorCode(err) != nkms.Invalid {
				t.Fatalf("ValidateACLEntry(%q): %v, want an Invalid error", entry, err)
			}
			return
		}
		k := &nkms.Key{State: nkms.StateEnable, ACLEnabled: true}
		if err := k.AddAllowedIPs([]string{entry}); err != nil || len(k.AllowedIPs) != 1 || k.AllowedIPs[0] != entry {
			t.Fatalf("AddAllowedIPs(%q) = %v, list %q: not kept as sent", entry, err, k.AllowedIPs)
		}
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		got := k.AllowsIP(ip)
		ip = ip.Unmap()
		var want bool
		switch {
		case !ip.Is4():
			want = false
		case strings.Contains(entry, "*"):
			want = true
			a := ip.As4()
			for i, o := range strings.Split(entry, ".") {
				if o != "*" && o != itoa(a[i]) {
					want = false
				}
			}
		case strings.Contains(entry, "/"):
			want = netip.MustParsePrefix(entry).Contains(ip)
		default:
			want = netip.MustParseAddr(entry) == ip
		}
		if got != want {
			t.Fatalf("entry %q allows %v: got %v, want %v", entry, ip, got, want)
		}
	})
}

func itoa(b byte) string {
	if b == 0 {
		return "0"
	}
	var s string
	for ; b > 0; b /= 10 {
		s = string(rune('0'+b%10)) + s
	}
	return s
}
