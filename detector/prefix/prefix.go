// Package prefix finds the most specific of a set of networks that holds
// an address, by looking the address up once per prefix length in use
// (at most 33 for IPv4, 129 for IPv6), whatever the number of networks:
// a lookup by prefix, not a scan. It is built once (configuration) and
// read without allocating (per packet).
package prefix

import (
	"fmt"
	"net/netip"
	"sort"
)

// Table maps networks to values. The zero Table is empty. It is not safe
// for concurrent writes; lookups may run concurrently once it is built.
type Table[V any] struct {
	byPrefix map[netip.Prefix]V
	// bits4 and bits6 are the prefix lengths in use, longest first.
	bits4, bits6 []int
}

// Add maps network p (its address masked) to v; a network added twice
// keeps the later value.
func (t *Table[V]) Add(p netip.Prefix, v V) {
	if t.byPrefix == nil {
		t.byPrefix = map[netip.Prefix]V{}
	}
	p = Normal(p)
	if _, ok := t.byPrefix[p]; !ok {
		bits := &t.bits6
		if p.Addr().Is4() {
			bits = &t.bits4
		}
		found := false
		for _, b := range *bits {
			found = found || b == p.Bits()
		}
		if !found {
			*bits = append(*bits, p.Bits())
			sort.Sort(sort.Reverse(sort.IntSlice(*bits)))
		}
	}
	t.byPrefix[p] = v
}

// Len is the number of networks.
func (t *Table[V]) Len() int { return len(t.byPrefix) }

// Lookup returns the value of the most specific network holding a (an
// IPv4-mapped IPv6 address counts as IPv4), and whether there is one.
func (t *Table[V]) Lookup(a netip.Addr) (v V, ok bool) {
	if len(t.byPrefix) == 0 || !a.IsValid() {
		return v, false
	}
	a = a.Unmap().WithZone("")
	bits := t.bits6
	if a.Is4() {
		bits = t.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if v, ok = t.byPrefix[p]; ok {
			return v, true
		}
	}
	return v, false
}

// Normal is p with its address masked and unmapped: 10.1.2.3/8 is
// 10.0.0.0/8, ::ffff:10.0.0.0/104 is 10.0.0.0/8.
func Normal(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	bits := p.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), max(bits-96, 0)
	}
	return netip.PrefixFrom(a.WithZone(""), bits).Masked()
}

// Parse reads a network (10.0.0.0/8, 2001:db8::/32) or an address (a
// network of one: 192.0.2.7 is 192.0.2.7/32).
func Parse(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return Normal(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (10.0.0.0/8, 2001:db8::/32) nor an address", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}
