package nkms

import (
	"net/netip"
	"slices"
	"strings"
)

// MaxACLEntries is the longest allowed IP list of a key.
const MaxACLEntries = 100

// ParseACLEntry validates one entry of a key's IP ACL: an IPv4 address
// ("203.0.113.7") or an IPv4 CIDR prefix ("203.0.113.0/24"). It returns the
// canonical form (a prefix with its host bits cleared).
func ParseACLEntry(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return "", invalid("ipList entries must be IPv4 addresses or IPv4 CIDR prefixes")
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return "", invalid("ipList entries must be IPv4 addresses or IPv4 CIDR prefixes")
	}
	return a.String(), nil
}

// parseACL validates a request's ipList.
func parseACL(ips []string) ([]string, error) {
	if len(ips) == 0 {
		return nil, invalid("ipList must name at least one address")
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		e, err := ParseACLEntry(ip)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// ValidateACLEntry checks one entry of a key's IP ACL as API 3.0 takes it
// (ncp-kms-api-v3.md §3.3.2): an IPv4 address ("10.0.0.1"), an IPv4 CIDR
// prefix with a length of 0-32 ("10.3.0.1/24", host bits allowed), or an
// address with "*" for whole octets ("10.*.0.*"); "*" and "/" are not
// combined. Such entries are stored exactly as sent: "10.0.0.1" and
// "10.0.0.1/32" are two entries.
func ValidateACLEntry(s string) error {
	bad := FieldErrorf("allowedIps", "allowedIps entries must be IPv4 addresses, IPv4 CIDR prefixes (/0-/32) or IPv4 addresses with * octets")
	switch {
	case strings.Contains(s, "*"):
		if strings.Contains(s, "/") {
			return bad
		}
		if _, ok := wildcardOctets(s); !ok {
			return bad
		}
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return bad
		}
	default:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return bad
		}
	}
	return nil
}

// wildcardOctets parses a dotted IPv4 address whose octets may be "*"
// (-1 in the result). Octets are decimal 0-255 without leading zeros, as
// netip takes them.
func wildcardOctets(s string) ([4]int, bool) {
	var out [4]int
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return out, false
	}
	for i, p := range parts {
		if p == "*" {
			out[i] = -1
			continue
		}
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return out, false
		}
		n := 0
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return out, false
			}
			n = n*10 + int(p[j]-'0')
		}
		if n > 255 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// AllowsIP reports whether a token call from ip may use the key: always when
// the ACL is off; when it is on, only from a listed address, a prefix
// containing it, or a wildcard address whose fixed octets it shares (an
// empty list denies everything).
func (k *Key) AllowsIP(ip netip.Addr) bool {
	if !k.ACLEnabled {
		return true
	}
	ip = ip.Unmap()
	for _, e := range k.AllowedIPs {
		if aclEntryAllows(e, ip) {
			return true
		}
	}
	return false
}

// aclEntryAllows reports whether entry e of a key's list allows ip.
func aclEntryAllows(e string, ip netip.Addr) bool {
	if strings.Contains(e, "*") {
		w, ok := wildcardOctets(e)
		if !ok || !ip.Is4() {
			return false
		}
		a := ip.As4()
		for i, o := range w {
			if o >= 0 && int(a[i]) != o {
				return false
			}
		}
		return true
	}
	if p, err := netip.ParsePrefix(e); err == nil {
		return p.Contains(ip)
	}
	a, err := netip.ParseAddr(e)
	return err == nil && a == ip
}

// SetACL turns the key's IP ACL on or off.
func (k *Key) SetACL(on bool) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	k.ACLEnabled = on
	return nil
}

// AddACL adds canonical entries to the key's list; entries already there are kept once.
func (k *Key) AddACL(entries []string) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	for _, e := range entries {
		if !slices.Contains(k.AllowedIPs, e) {
			k.AllowedIPs = append(k.AllowedIPs, e)
		}
	}
	if len(k.AllowedIPs) > MaxACLEntries {
		return invalid("a key's ipList holds at most %d entries", MaxACLEntries)
	}
	return nil
}

// DeleteACL removes canonical entries from the key's list; absent ones are ignored.
func (k *Key) DeleteACL(entries []string) error {
	if err := Allowed(k.State, OpSettings); err != nil {
		return err
	}
	k.AllowedIPs = slices.DeleteFunc(k.AllowedIPs, func(e string) bool { return slices.Contains(entries, e) })
	return nil
}

// AddAllowedIPs adds entries to the key's list exactly as given (API 3.0):
// an entry already there is kept once; past MaxACLEntries nothing is added.
// The key must be ENABLED.
func (k *Key) AddAllowedIPs(entries []string) error {
	if k.State != StateEnable {
		return ErrInvalidStatus
	}
	list := slices.Clone(k.AllowedIPs)
	for _, e := range entries {
		if !slices.Contains(list, e) {
			list = append(list, e)
		}
	}
	if len(list) > MaxACLEntries {
		return FieldErrorf("allowedIps", "a key's allowedIps holds at most %d entries", MaxACLEntries)
	}
	k.AllowedIPs = list
	return nil
}

// RemoveAllowedIPs removes entries from the key's list by exact string
// (API 3.0): when the list is not empty and any entry is not in it, nothing
// is removed. The key must be ENABLED.
func (k *Key) RemoveAllowedIPs(entries []string) error {
	if k.State != StateEnable {
		return ErrInvalidStatus
	}
	if len(k.AllowedIPs) == 0 {
		return nil
	}
	for _, e := range entries {
		if !slices.Contains(k.AllowedIPs, e) {
			return FieldErrorf("allowedIps", "%q is not in the key's allowedIps", e)
		}
	}
	k.AllowedIPs = slices.DeleteFunc(k.AllowedIPs, func(e string) bool { return slices.Contains(entries, e) })
	return nil
}
