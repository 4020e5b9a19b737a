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

// AllowsIP reports whether a token call from ip may use the key: always when
// the ACL is off; when it is on, only from a listed address or prefix (an
// empty list denies everything).
func (k *Key) AllowsIP(ip netip.Addr) bool {
	if !k.ACLEnabled {
		return true
	}
	ip = ip.Unmap()
	for _, e := range k.AllowedIPs {
		if p, err := netip.ParsePrefix(e); err == nil {
			if p.Contains(ip) {
				return true
			}
		} else if a, err := netip.ParseAddr(e); err == nil && a == ip {
			return true
		}
	}
	return false
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
