package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// check collects the validation errors of one rule's settings, each naming
// its key in full (rules.<rule>.<key>) and the bad value.
type check struct {
	prefix string
	errs   []error
}

func newCheck(rule string) *check { return &check{prefix: "rules." + rule + "."} }

func (c *check) fail(key, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s%s: %s", c.prefix, key, fmt.Sprintf(format, args...)))
}

// duration checks lo <= v <= hi.
func (c *check) duration(key string, v, lo, hi time.Duration) {
	if v < lo || v > hi {
		c.fail(key, "%v is out of range [%s, %s]", v, shortDuration(lo), shortDuration(hi))
	}
}

// shortDuration writes a bound as a person would: 1m, 10m, 1h30m, not
// 1m0s (time.Duration's String keeps the trailing zero units).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// positive checks v > 0.
func (c *check) positive(key string, v float64) {
	if !(v > 0) {
		c.fail(key, "%v must be positive", v)
	}
}

// ratio checks 0 < v <= 1.
func (c *check) ratio(key string, v float64) {
	if !(v > 0 && v <= 1) {
		c.fail(key, "%v is out of range (0, 1]", v)
	}
}

// count checks lo <= v <= hi.
func (c *check) count(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.fail(key, "%d is out of range [%d, %d]", v, lo, hi)
	}
}

// prefixes checks that every entry is a CIDR prefix.
func (c *check) prefixes(key string, v []string) {
	for i, s := range v {
		if _, err := netip.ParsePrefix(s); err != nil {
			c.fail(fmt.Sprintf("%s[%d]", key, i), "%q is not a CIDR prefix (e.g. 10.0.0.0/24, 2001:db8::/64)", s)
		}
	}
}

// addrs checks that every entry is an IP address.
func (c *check) addrs(key string, v []string) {
	for i, s := range v {
		if _, err := netip.ParseAddr(s); err != nil {
			c.fail(fmt.Sprintf("%s[%d]", key, i), "%q is not an IP address", s)
		}
	}
}

func (c *check) err() error { return errors.Join(c.errs...) }

// parsePrefixes parses validated CIDR strings, masked to their networks.
func parsePrefixes(v []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range v {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// parseAddrs parses validated address strings into a set.
func parseAddrs(v []string) map[netip.Addr]bool {
	out := make(map[netip.Addr]bool, len(v))
	for _, s := range v {
		if a, err := netip.ParseAddr(s); err == nil {
			out[a.Unmap()] = true
		}
	}
	return out
}

// rateLevel is how pps stands against a start level and its stop ratio.
func rateLevel(pps, start, stopRatio float64) detector.Level {
	switch {
	case pps >= start:
		return detector.LevelFire
	case pps >= start*stopRatio:
		return detector.LevelSustain
	}
	return detector.LevelQuiet
}

// parseAddrOrPrefix parses an address (as a single-address prefix) or a
// CIDR prefix.
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

func itoa(i int) string { return fmt.Sprint(i) }
