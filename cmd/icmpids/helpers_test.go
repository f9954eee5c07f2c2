package main

import (
	"net/netip"
	"time"
)

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// victimFor returns a stable documentation address per test name.
func victimFor(name string) netip.Addr {
	var h byte
	for _, c := range name {
		h = h*31 + byte(c)
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, h | 1})
}
