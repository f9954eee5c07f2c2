package rules_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
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
	type want = redirectWant
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
			checkRedirectAlerts(t, replay(t, tc.frames, r), tc.want)
			for _, st := range r.Tables() {
				if st.Len > st.Cap {
					t.Errorf("%s holds %d > cap %d", st.Name, st.Len, st.Cap)
				}
			}
		})
	}
}

// redirectWant: the reasons of the alert on target (nil: no alert).
type redirectWant struct {
	target  netip.Addr
	reasons []string
}

// checkRedirectAlerts checks that each target of wants raised an alert
// with exactly its reasons, or none.
func checkRedirectAlerts(t *testing.T, evs []*detector.Event, wants []redirectWant) {
	t.Helper()
	for _, w := range wants {
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

// TestRedirectLearningShortcuts: the attacker against what icmp_redirect
// skips to learn cheaply. It learns ICMPv6 bindings from link-local
// sources only (a host takes a redirect from no other, RFC 4861 8.1); it
// probes a binding table only when the source's bucket in its filter (by
// sketch.HashAddr, which anyone can compute) has that table's bit set;
// and it rebuilds the filter once the evicted candidates' bits add up.
func TestRedirectLearningShortcuts(t *testing.T) {
	at := func(s float64) time.Time { return ruleEpoch.Add(time.Duration(s * float64(time.Second))) }
	victim, other, third := addr("10.0.0.7"), addr("10.0.0.8"), addr("10.0.0.9")
	r6, g6, h6 := addr("fe80::1"), addr("2001:db8::1"), addr("fe80::5")
	reply6 := func(src netip.Addr, start float64, n int) []synth.Frame {
		return seq(synth.Msg{Src: src, Dst: addr("2001:db8::5"), Type: 129, SrcMAC: bindRouterMAC, Rest: make([]byte, 56)}, at(start), 1, n, nil)
	}
	redirect6 := func(src netip.Addr, mac []byte, s float64) synth.Frame {
		return synth.Msg{Src: src, Dst: h6, Type: 137, TTL: 255, SrcMAC: mac, Rest: synth.Redirect6(addr("fe80::2"), addr("2001:db8::80"))}.At(at(s))
	}
	// A second router whose address shares the gateway's filter bucket
	// (16 bits of HashAddr at the default max_routers): an attacker can
	// find one as easily, and it must cost only a probe.
	gwBucket := sketch.HashAddr(bindGW) >> 48
	var twin netip.Addr
	for i := 2; i < 1<<24; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if sketch.HashAddr(a)>>48 == gwBucket {
			twin = a
			break
		}
	}
	if !twin.IsValid() {
		t.Fatal("no address shares the gateway's bucket")
	}
	twinReplies := func(start float64, n int) []synth.Frame {
		return seq(synth.Msg{Src: twin, Dst: addr("10.0.0.5"), Type: 0, SrcMAC: synth.MAC(2), Rest: make([]byte, 56)}, at(start), 0.9, n, nil)
	}
	twinRedirect := func(mac []byte, host netip.Addr, s float64) synth.Frame {
		m := redirect4(twin, host, addr("10.0.0.2"), addr("192.0.2.80"))
		m.SrcMAC = mac
		return m.At(at(s))
	}
	small := rules.DefaultRedirectConfig()
	small.MaxRouters = 64 // a filter of 1,024 buckets: a flood fills half of them in a second
	cases := []struct {
		name   string
		cfg    rules.RedirectConfig
		frames []synth.Frame
		want   []redirectWant
	}{
		{"IPv6: the router's link-local address, learned from its echo replies, forged from another MAC", rules.DefaultRedirectConfig(),
			synth.Merge(reply6(r6, 0, 5), []synth.Frame{redirect6(r6, bindAttackerMAC, 10)}), []redirectWant{{h6, []string{"spoofed_router"}}}},
		{"IPv6: the router's own redirect from its link-local address", rules.DefaultRedirectConfig(),
			synth.Merge(reply6(r6, 0, 5), []synth.Frame{redirect6(r6, bindRouterMAC, 10)}), []redirectWant{{h6, nil}}},
		// Its global address teaches nothing: a redirect in its name is
		// offlink_source whatever the MAC.
		{"IPv6: a forged redirect from the router's global address", rules.DefaultRedirectConfig(),
			synth.Merge(reply6(g6, 0, 5), []synth.Frame{redirect6(g6, bindAttackerMAC, 10)}), []redirectWant{{h6, []string{"offlink_source"}}}},
		{"a router in the gateway's filter bucket, heard twice: a forged redirect in its name", rules.DefaultRedirectConfig(),
			synth.Merge(gwReplies(at(0), 5), twinReplies(1, 2), []synth.Frame{twinRedirect(bindAttackerMAC, victim, 10), twinRedirect(synth.MAC(2), other, 11), gwRedirect(bindAttackerMAC, third, at(12))}),
			[]redirectWant{{victim, []string{"spoofed_router"}}, {other, nil}, {third, []string{"spoofed_router"}}}},
		{"a router in the gateway's filter bucket, heard first", rules.DefaultRedirectConfig(),
			synth.Merge(twinReplies(0, 5), gwReplies(at(1), 2), []synth.Frame{gwRedirect(bindAttackerMAC, victim, at(10)), gwRedirect(bindRouterMAC, other, at(11)), twinRedirect(bindAttackerMAC, third, 12)}),
			[]redirectWant{{victim, []string{"spoofed_router"}}, {other, nil}, {third, []string{"spoofed_router"}}}},
		// 28,000 spoofed bindings, each twice (the doorkeeper admits most)
		// in 2.1 s between two sweeps: the filter is rebuilt before the
		// next sweep, and keeps the gateway and the router heard after
		// the flood.
		{"the filter rebuilt under a flood of bindings keeps the routers", small,
			synth.Merge(gwReplies(at(0), 5), bindingFlood(at(12), 14, 2000), twinReplies(15, 2),
				[]synth.Frame{gwRedirect(bindAttackerMAC, victim, at(18)), gwRedirect(bindRouterMAC, other, at(18.5)), twinRedirect(bindAttackerMAC, third, 19)}),
			[]redirectWant{{victim, []string{"spoofed_router"}}, {other, nil}, {third, []string{"spoofed_router"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkRedirectAlerts(t, replay(t, tc.frames, rules.NewRedirect(tc.cfg)), tc.want)
		})
	}
}

// bindingFlood: batches of n spoofed replies (a new source each, from the
// attacker's MAC), every batch sent twice in a row, 75 ms a batch.
func bindingFlood(start time.Time, batches, n int) []synth.Frame {
	var out [][]synth.Frame
	for b := 0; b < batches; b++ {
		base := nth(addr("10.1.0.0"), b*n)
		at := start.Add(time.Duration(2*b) * 75 * time.Millisecond)
		out = append(out, spoofedReplies(at, 75*time.Millisecond, n, base, netip.Addr{}), spoofedReplies(at.Add(75*time.Millisecond), 75*time.Millisecond, n, base, netip.Addr{}))
	}
	return synth.Merge(out...)
}
