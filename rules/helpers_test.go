package rules_test

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// ruleEpoch is where the scenarios of the newer rules' tests start.
var ruleEpoch = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// defaultRules builds every rule with its defaults, as replay runs them.
func defaultRules(t testing.TB) []detector.Rule {
	t.Helper()
	rs, err := rules.Enabled(rules.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// startsOf lists the attacks evs start as "rule target" (×N when more
// than once), sorted.
func startsOf(evs []*detector.Event) []string {
	n := map[string]int{}
	for _, ev := range evs {
		if ev.Phase == detector.PhaseStart {
			n[ev.Rule.Name+" "+ev.Target.String()]++
		}
	}
	var out []string
	for k, c := range n {
		if c > 1 {
			k = fmt.Sprintf("%s x%d", k, c)
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// only keeps the entries of starts that name rule.
func only(starts []string, rule string) []string {
	var out []string
	for _, s := range starts {
		if strings.HasPrefix(s, rule+" ") {
			out = append(out, s)
		}
	}
	return out
}

// firstStart returns the first start event of rule in evs, or nil.
func firstStart(evs []*detector.Event, rule string) *detector.Event {
	for _, ev := range evs {
		if ev.Phase == detector.PhaseStart && ev.Rule.Name == rule {
			return ev
		}
	}
	return nil
}

// seq returns count frames of m sent at rate per second from start, with
// each (optional) changing the i-th message.
func seq(m synth.Msg, start time.Time, rate float64, count int, each func(i int, m *synth.Msg)) []synth.Frame {
	return synth.Every(m, start, time.Duration(float64(time.Second)/rate), count, each)
}

// addr parses an address for a test table.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// nth returns the i-th address after base (the low 16 bits counted).
func nth(base netip.Addr, i int) netip.Addr {
	b := base.As16()
	v := int(b[14])<<8 | int(b[15]) + i
	b[14], b[15] = byte(v>>8), byte(v)
	if base.Is4() {
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return netip.AddrFrom16(b)
}

// equal compares two string lists, nil and empty alike.
func equal(a, b []string) bool {
	return strings.Join(a, "|") == strings.Join(b, "|")
}

// secs is n seconds.
func secs(n int) time.Duration { return time.Duration(n) * time.Second }
