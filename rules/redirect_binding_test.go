package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// The link of these tests: gateway 10.0.0.1 at routerMAC, hosts in
// 10.0.0.0/24, an attacker on the link at attackerMAC.
var (
	bindGW          = addr("10.0.0.1")
	bindRouterMAC   = synth.MAC(1)
	bindAttackerMAC = synth.MAC(66)
)

// gwReplies: the gateway answers a host's pings, n times, one a second
// from start (TTL 64, from its own MAC).
func gwReplies(start time.Time, n int) []synth.Frame {
	return seq(synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 0, SrcMAC: bindRouterMAC, Rest: make([]byte, 56)}, start, 1, n, nil)
}

// spoofedReplies: count TTL-64 echo replies from the attacker's MAC, each
// in the name of another source (from base on) to its own destination,
// spread over span from start — or, with src valid, all in src's name.
func spoofedReplies(start time.Time, span time.Duration, count int, base, src netip.Addr) []synth.Frame {
	rate := float64(count) / span.Seconds()
	return seq(synth.Msg{Type: 0, SrcMAC: bindAttackerMAC, Rest: make([]byte, 56)}, start, rate, count, func(i int, m *synth.Msg) {
		m.Src, m.Dst = src, addr("10.0.0.200")
		if !src.IsValid() {
			b := base.As4()
			v := int(b[1])<<16 | int(b[2])<<8 | int(b[3]) + i
			m.Src = netip.AddrFrom4([4]byte{b[0], byte(v >> 16), byte(v >> 8), byte(v)})
			m.Dst = netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
		}
	})
}

// gwRedirect is a redirect in the gateway's name from mac to host: use
// 10.0.0.2 for 192.0.2.80 (a valid redirect when the gateway sends it).
func gwRedirect(mac []byte, host netip.Addr, at time.Time) synth.Frame {
	m := redirect4(bindGW, host, addr("10.0.0.2"), addr("192.0.2.80"))
	m.SrcMAC = mac
	return m.At(at)
}

// TestRedirectBindings: the binding of a router's address to its MAC is
// weighed, not first come first served, and a burst of one-shot spoofed
// bindings cannot flush it.
func TestRedirectBindings(t *testing.T) {
	at := func(s float64) time.Time { return ruleEpoch.Add(time.Duration(s * float64(time.Second))) }
	victim, other := addr("10.0.0.7"), addr("10.0.0.8")
	type want struct {
		target  netip.Addr
		reasons []string // nil: no alert on target
	}
	cases := []struct {
		name   string
		frames []synth.Frame
		want   []want
	}{
		// Issue 25.5, first case. Before: the real redirect was reported
		// as spoofed_router and the forged one passed.
		{"one spoofed reply before the gateway is heard: the gateway's redirect is clean",
			synth.Merge(spoofedReplies(at(0), time.Second, 1, netip.Addr{}, bindGW), gwReplies(at(1), 5), []synth.Frame{gwRedirect(bindRouterMAC, victim, at(10))}),
			[]want{{victim, nil}}},
		{"one spoofed reply before the gateway is heard: the forged redirect is reported",
			synth.Merge(spoofedReplies(at(0), time.Second, 1, netip.Addr{}, bindGW), gwReplies(at(1), 5), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(10))}),
			[]want{{victim, []string{"spoofed_router", "binding_conflict"}}}},
		{"a spoofed reply after the gateway is known: the forged redirect is a conflict",
			synth.Merge(gwReplies(at(0), 5), spoofedReplies(at(6), time.Second, 1, netip.Addr{}, bindGW), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(10)), gwRedirect(bindRouterMAC, other, at(11))}),
			[]want{{victim, []string{"spoofed_router", "binding_conflict"}}, {other, nil}}},
		{"two MACs heard over time for one router: both redirects are conflicts",
			synth.Merge(gwReplies(at(0), 5), spoofedReplies(at(0.5), 5*time.Second, 5, netip.Addr{}, bindGW), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(10)), gwRedirect(bindRouterMAC, other, at(11))}),
			[]want{{victim, []string{"binding_conflict"}}, {other, []string{"binding_conflict"}}}},
		// Issue 25.5, second case: 4,113 one-shot spoofed bindings in
		// 0.9 s. Before: the gateway's binding was evicted and the
		// forged redirect passed (4,112 did not flush it).
		{"4,113 one-shot spoofed bindings do not flush the gateway",
			synth.Merge(gwReplies(at(0), 5), spoofedReplies(at(10), 900*time.Millisecond, 4113, addr("10.1.0.0"), netip.Addr{}), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(12))}),
			[]want{{victim, []string{"spoofed_router"}}}},
		{"20,000 one-shot spoofed bindings do not flush the gateway",
			synth.Merge(gwReplies(at(0), 5), spoofedReplies(at(10), 2*time.Second, 20000, addr("10.1.0.0"), netip.Addr{}), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(13)), gwRedirect(bindRouterMAC, other, at(14))}),
			[]want{{victim, []string{"spoofed_router"}}, {other, nil}}},
		// A patient attacker heard 3 times a second apart for each of
		// 5,000 forged bindings fills the confirmed table; the live
		// gateway stays in it.
		{"5,000 forged bindings heard three times each do not push the gateway out",
			synth.Merge(gwReplies(at(0), 5), spoofedReplies(at(10), time.Second, 5000, addr("10.1.0.0"), netip.Addr{}),
				spoofedReplies(at(11.5), time.Second, 5000, addr("10.1.0.0"), netip.Addr{}), spoofedReplies(at(13), time.Second, 5000, addr("10.1.0.0"), netip.Addr{}),
				[]synth.Frame{gwRedirect(bindAttackerMAC, victim, at(17))}),
			[]want{{victim, []string{"spoofed_router"}}}},
		// Benign twins.
		{"the gateway's valid redirect", synth.Merge(gwReplies(at(0), 5), []synth.Frame{gwRedirect(bindRouterMAC, victim, at(10))}), []want{{victim, nil}}},
		{"a busy LAN: 6,000 hosts' replies, then the gateway's redirect", synth.Merge(gwReplies(at(0), 20),
			busyLAN(at(0), 6000, 3), []synth.Frame{gwRedirect(bindRouterMAC, victim, at(25))}), []want{{victim, nil}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rules.NewRedirect(rules.DefaultRedirectConfig())
			evs := replay(t, tc.frames, r)
			for _, w := range tc.want {
				var ev *detector.Event
				for _, e := range evs {
					if e.Phase == detector.PhaseStart && e.Target == w.target {
						ev = e
						break
					}
				}
				if w.reasons == nil {
					if ev != nil {
						t.Errorf("%v: raised %v", w.target, ev.Extra["reasons"])
					}
					continue
				}
				if ev == nil {
					t.Errorf("%v: silent, want %v", w.target, w.reasons)
					continue
				}
				rs, _ := ev.Extra["reasons"].(map[string]any)
				for _, reason := range w.reasons {
					if rs[reason] == nil {
						t.Errorf("%v: reasons %v, want %s", w.target, rs, reason)
					}
				}
				if len(rs) != len(w.reasons) {
					t.Errorf("%v: reasons %v, want exactly %v", w.target, rs, w.reasons)
				}
			}
			for _, st := range r.Tables() {
				if st.Len > st.Cap {
					t.Errorf("%s holds %d > cap %d", st.Name, st.Len, st.Cap)
				}
			}
		})
	}
}

// busyLAN: n hosts of 10.0.0.0/16 each answer pings k times, a second
// apart, from their own MACs.
func busyLAN(start time.Time, n, k int) []synth.Frame {
	var out [][]synth.Frame
	for round := 0; round < k; round++ {
		out = append(out, seq(synth.Msg{Type: 0, Rest: make([]byte, 56)}, start.Add(secs(round)), float64(n), n, func(i int, m *synth.Msg) {
			m.Src = netip.AddrFrom4([4]byte{10, 0, byte(1 + i>>8), byte(i)})
			m.Dst = addr("10.0.0.5")
			m.SrcMAC = synth.MAC(uint32(1000 + i))
		}))
	}
	return synth.Merge(out...)
}

// TestRedirectBindingTables: the flood of one-shot bindings costs the
// candidates table evictions, counted; the confirmed table keeps the
// gateway and refuses what it has no room for, counted too.
func TestRedirectBindingTables(t *testing.T) {
	cfg := rules.DefaultRedirectConfig()
	cfg.MaxRouters = 64
	r := rules.NewRedirect(cfg)
	// Four batches of 30 forged bindings, each heard three times 1.1 s
	// apart (confirmed), then 200 more heard twice.
	lists := [][]synth.Frame{gwReplies(ruleEpoch, 5)}
	start := ruleEpoch.Add(10 * time.Second)
	for batch := 0; batch < 4; batch++ {
		base := nth(addr("10.1.0.0"), 30*batch)
		for k := 0; k < 3; k++ {
			lists = append(lists, spoofedReplies(start, 100*time.Millisecond, 30, base, netip.Addr{}))
			start = start.Add(1100 * time.Millisecond)
		}
	}
	// 200 more, each twice: the doorkeeper admits a new binding to the
	// full candidates table at its second packet, evicting a candidate.
	lists = append(lists, spoofedReplies(start, time.Second, 200, addr("10.2.0.0"), netip.Addr{}),
		spoofedReplies(start.Add(1200*time.Millisecond), time.Second, 200, addr("10.2.0.0"), netip.Addr{}))
	frames := synth.Merge(lists...)
	replay(t, frames, r)
	stats := map[string]detector.TableStat{}
	for _, st := range r.Tables() {
		stats[st.Name] = st
	}
	c, m := stats["icmp_redirect.candidates"], stats["icmp_redirect.routers"]
	if c.Cap != 64 || c.Len > 64 || c.Evicted == 0 {
		t.Errorf("candidates %+v: want cap 64, evictions counted", c)
	}
	if m.Cap != 64 || m.Len != 64 || m.Evicted != 4*30+1-64 {
		t.Errorf("routers %+v: want full at 64, %d refusals counted", m, 4*30+1-64)
	}
}

// TestRedirectLearningDoesNotAllocate: learning bindings, new and known,
// with evictions, in steady state.
func TestRedirectLearningDoesNotAllocate(t *testing.T) {
	cfg := rules.DefaultRedirectConfig()
	cfg.MaxRouters = 256
	r := rules.NewRedirect(cfg)
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), r)
	if err != nil {
		t.Fatal(err)
	}
	frames := synth.Merge(gwReplies(ruleEpoch, 3), spoofedReplies(ruleEpoch, 3*time.Second, 3000, addr("10.1.0.0"), netip.Addr{}))
	ts := ruleEpoch
	feed := func() {
		for _, f := range frames {
			ts = ts.Add(time.Millisecond)
			e.HandleFrame(detector.LinkEthernet, f.Data, ts, len(f.Data))
		}
	}
	feed()
	if a := testing.AllocsPerRun(5, feed); a != 0 {
		t.Fatalf("%.1f allocations per %d packets", a, len(frames))
	}
}

// TestRedirectLearnsOnlyWhatTheLinkEngineGets: every packet icmp_redirect
// learns a binding from, or judges, reaches the link's engine when several
// engines share the work (detector.LinkRoute: whole or as a copy), so its
// tables do not depend on the number of engines.
func TestRedirectLearnsOnlyWhatTheLinkEngineGets(t *testing.T) {
	r6 := addr("fe80::1")
	cases := []struct {
		name  string
		m     synth.Msg
		route detector.LinkRouting
	}{
		{"echo reply", synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 0, Rest: make([]byte, 8)}, detector.LinkCopy},
		{"echo reply, TTL 128", synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 0, TTL: 128, Rest: make([]byte, 8)}, detector.LinkCopy},
		{"routed echo reply", synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 0, TTL: 57, Rest: make([]byte, 8)}, detector.LinkNone},
		{"time exceeded", synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 11, Rest: synth.Unreach(0, synth.Quote(addr("10.0.0.5"), addr("192.0.2.1"), 17, 1, 33434, 60))}, detector.LinkCopy},
		{"ICMPv6 echo reply", synth.Msg{Src: r6, Dst: addr("fe80::5"), Type: 129, Rest: make([]byte, 8)}, detector.LinkCopy},
		{"ICMPv6 unreachable", synth.Msg{Src: r6, Dst: addr("2001:db8::5"), Type: 1, Rest: synth.Unreach(0, synth.Quote(addr("2001:db8::5"), addr("2001:db8:9::1"), 17, 1, 53, 60))}, detector.LinkCopy},
		{"RA", synth.Msg{Src: r6, Dst: addr("ff02::1"), Type: 134, Rest: synth.RA(1800, 0)}, detector.LinkWhole},
		{"NA", synth.Msg{Src: r6, Dst: addr("2001:db8::5"), Type: 136, Rest: synth.NA(r6, true, true, true)}, detector.LinkWhole},
		{"redirect", redirect4(bindGW, addr("10.0.0.5"), addr("10.0.0.2"), addr("192.0.2.80")), detector.LinkWhole},
		{"ICMPv6 redirect", synth.Msg{Src: r6, Dst: addr("2001:db8::5"), Type: 137, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}, detector.LinkWhole},
		{"echo request", synth.Msg{Src: bindGW, Dst: addr("10.0.0.5"), Type: 8, Rest: make([]byte, 8)}, detector.LinkNone},
	}
	dec := detector.NewDecoder()
	var p detector.Packet
	for _, tc := range cases {
		f := tc.m.At(ruleEpoch)
		dec.Decode(detector.LinkEthernet, f.Data, f.Time, len(f.Data), &p)
		if got := detector.LinkRoute(&p); got != tc.route {
			t.Errorf("%s: LinkRoute %d, want %d", tc.name, got, tc.route)
		}
	}
}

// TestRedirectBindingsSurviveSweeps: a source is looked up in the binding
// tables only when its bit in the rule's filter is set (set with every
// new binding); the sweeps every 10 s rebuild the filter from the tables. The gateway, heard for 45 s
// across four sweeps (one in the middle of 20,000 one-shot spoofed
// bindings), keeps its one confirmed binding — no second one as a new
// candidate — and the forged redirect in its name is still spoofed_router.
func TestRedirectBindingsSurviveSweeps(t *testing.T) {
	at := func(s float64) time.Time { return ruleEpoch.Add(time.Duration(s * float64(time.Second))) }
	victim, other := addr("10.0.0.7"), addr("10.0.0.8")
	for _, tc := range []struct {
		name       string
		frames     []synth.Frame
		candidates int // want: the candidates table's length
	}{
		// (The first sweep comes with the first packet, another host's.)
		{"the gateway heard 5 times between sweeps", synth.Merge(spoofedReplies(at(0), time.Second, 1, netip.Addr{}, addr("10.0.0.99")), gwReplies(at(1), 5),
			[]synth.Frame{gwRedirect(bindAttackerMAC, victim, at(7)), gwRedirect(bindRouterMAC, other, at(8))}), 1},
		{"the gateway alone", synth.Merge(gwReplies(at(0), 45), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(46)), gwRedirect(bindRouterMAC, other, at(47))}), 0},
		{"the gateway and 20,000 spoofed bindings", synth.Merge(gwReplies(at(0), 45), spoofedReplies(at(19), 2*time.Second, 20000, addr("10.1.0.0"), netip.Addr{}),
			[]synth.Frame{gwRedirect(bindAttackerMAC, victim, at(46)), gwRedirect(bindRouterMAC, other, at(47))}), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rules.NewRedirect(rules.DefaultRedirectConfig())
			evs := replay(t, tc.frames, r)
			got := false
			for _, e := range evs {
				if e.Phase != detector.PhaseStart {
					continue
				}
				rs, _ := e.Extra["reasons"].(map[string]any)
				switch e.Target {
				case victim:
					got = rs["spoofed_router"] != nil && rs["binding_conflict"] == nil
				case other:
					t.Errorf("the gateway's own redirect raised %v", rs)
				}
			}
			if !got {
				t.Error("the forged redirect was not reported as spoofed_router alone")
			}
			stats := map[string]detector.TableStat{}
			for _, st := range r.Tables() {
				stats[st.Name] = st
			}
			if m := stats["icmp_redirect.routers"]; m.Len != 1 {
				t.Errorf("routers %+v: want the gateway alone", m)
			}
			if c := stats["icmp_redirect.candidates"]; tc.candidates >= 0 && c.Len != tc.candidates {
				t.Errorf("candidates %+v: want %d (a second binding of the gateway?)", c, tc.candidates)
			}
		})
	}
}
