package nkms_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/nkms/nkms"
)

// FuzzACL checks ParseACLEntry and Key.AllowsIP on arbitrary entries and
// addresses: parsing never panics; an accepted entry is IPv4 and canonical
// (parsing it again gives it back unchanged); and a key whose enabled ACL
// holds just that entry allows exactly the addresses of its prefix (an
// address entry is a /32), with an IPv4-mapped IPv6 address counting as its
// IPv4 form (netip's Unmap, which also drops a zone). It checks the fuzzed
// address and the edges of the prefix.
func FuzzACL(f *testing.F) {
	for _, s := range []string{
		"203.0.113.7", "203.0.113.0/24", "203.0.113.7/24", "0.0.0.0/0", "10.0.0.0/8", "1.2.3.4/32", "1.2.3.4/31",
		"255.255.255.255", "0.0.0.0", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/+8", "1.2.3.4/024", "1.2.3.4/", "/24",
		"::1", "::ffff:1.2.3.4", "::ffff:1.2.3.4/120", "2001:db8::/32", "01.2.3.4", "1.2.3", "1.2.3.4.5",
		" 1.2.3.4", "1.2.3.4 ", "1.2.3.4%eth0", "1.2.3.4/8%eth0", "", "/", "1.2.3.4/8/8", "１.2.3.4",
	} {
		f.Add(s, []byte{203, 0, 113, 7})
		f.Add(s, netip.MustParseAddr("::ffff:1.2.3.4").AsSlice())
		f.Add(s, []byte(nil))
	}
	f.Fuzz(func(t *testing.T, entry string, raw []byte) {
		canon, err := nkms.ParseACLEntry(entry)
		if err != nil {
			if canon != "" {
				t.Fatalf("ParseACLEntry(%q) = %q with error %v", entry, canon, err)
			}
			return
		}

		// Canonical: a second parse gives the same string.
		again, err := nkms.ParseACLEntry(canon)
		if err != nil || again != canon {
			t.Fatalf("ParseACLEntry(%q) = %q, but ParseACLEntry(%q) = %q, %v", entry, canon, canon, again, err)
		}

		// IPv4, and the prefix it stands for.
		var prefix netip.Prefix
		if strings.Contains(canon, "/") {
			p, err := netip.ParsePrefix(canon)
			if err != nil || !p.Addr().Is4() || p != p.Masked() {
				t.Fatalf("ParseACLEntry(%q) = %q: not a masked IPv4 prefix (%v)", entry, canon, err)
			}
			prefix = p
		} else {
			a, err := netip.ParseAddr(canon)
			if err != nil || !a.Is4() {
				t.Fatalf("ParseACLEntry(%q) = %q: not an IPv4 address (%v)", entry, canon, err)
			}
			prefix = netip.PrefixFrom(a, 32)
		}
		if strings.Contains(entry, "/") {
			if p, err := netip.ParsePrefix(entry); err != nil || p.Masked() != prefix {
				t.Fatalf("ParseACLEntry(%q) = %q: netip parses the entry as %v, %v", entry, canon, p, err)
			}
		} else if a, err := netip.ParseAddr(entry); err != nil || netip.PrefixFrom(a, 32) != prefix {
			t.Fatalf("ParseACLEntry(%q) = %q: netip parses the entry as %v, %v", entry, canon, a, err)
		}

		// A key with only this entry, its ACL on, built through the Key methods.
		k := &nkms.Key{State: nkms.StateEnable}
		if err := k.AddACL([]string{canon, canon}); err != nil {
			t.Fatalf("AddACL(%q) = %v", canon, err)
		}
		if len(k.AllowedIPs) != 1 {
			t.Fatalf("AddACL of %q twice: list %q, want one entry", canon, k.AllowedIPs)
		}
		off := k.Clone()
		if err := k.SetACL(true); err != nil {
			t.Fatalf("SetACL(true) = %v", err)
		}

		// The addresses to check: the fuzzed one, the edges of the prefix and
		// their neighbours outside it, each also in its IPv4-mapped form.
		first := prefix.Addr()
		u := binary.BigEndian.Uint32(first.AsSlice())
		last := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, u|uint32(uint64(1)<<(32-prefix.Bits())-1))))
		addrs := []netip.Addr{first, last, first.Prev(), last.Next(), netip.Addr{}}
		if a, ok := netip.AddrFromSlice(raw); ok {
			addrs = append(addrs, a, a.WithZone("eth0"))
		}
		for _, a := range addrs[:len(addrs):len(addrs)] {
			if a.Is4() {
				addrs = append(addrs, netip.AddrFrom16(a.As16()))
			}
		}
		for _, a := range addrs {
			want := prefix.Contains(a.Unmap())
			if got := k.AllowsIP(a); got != want {
				t.Errorf("ACL [%q] (from %q) allows %v: got %v, want %v", canon, entry, a, got, want)
			}
			if !off.AllowsIP(a) {
				t.Errorf("disabled ACL [%q] refuses %v", canon, a)
			}
		}
	})
}
