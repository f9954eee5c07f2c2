package rules_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// errMsg is an ICMP error from router to host of type/code with the
// 4-byte header data hd, quoting a packet of proto from qsrc to qdst of
// length bytes (sport/dport its ports).
func errMsg(router, host netip.Addr, typ, code uint8, hd uint32, qsrc, qdst netip.Addr, proto uint8, sport, dport uint16, length int) synth.Msg {
	return synth.Msg{Src: router, Dst: host, Type: typ, Code: code, Rest: synth.Unreach(hd, synth.Quote(qsrc, qdst, proto, sport, dport, length))}
}

func TestErrorAbuse(t *testing.T) {
	h4, r4, s4 := addr("10.0.0.5"), addr("10.0.0.1"), addr("192.0.2.80")
	h6, r6, s6 := addr("2001:db8::5"), addr("2001:db8::1"), addr("2001:db8:2::80")
	tests := []struct {
		name   string
		frames []synth.Frame
		want   string // the reason that must be counted; "" = silent
	}{
		// mtu_below_minimum
		{"IPv6 PTB MTU 1200 (toobig6)", one(errMsg(r6, h6, 2, 0, 1200, h6, s6, 6, 40000, 443, 1500)), "mtu_below_minimum"},
		{"IPv4 frag-needed MTU 68", one(errMsg(r4, h4, 3, 4, 68, h4, s4, 6, 40000, 443, 1500)), "mtu_below_minimum"},
		{"IPv6 PTB MTU 1280, genuine", one(errMsg(r6, h6, 2, 0, 1280, h6, s6, 6, 40000, 443, 1500)), ""},
		{"IPv4 frag-needed MTU 1400, genuine", one(errMsg(r4, h4, 3, 4, 1400, h4, s4, 6, 40000, 443, 1500)), ""},
		{"IPv4 frag-needed MTU 1492, genuine", one(errMsg(r4, h4, 3, 4, 1492, h4, s4, 6, 40000, 25, 1500)), ""},
		{"IPv4 frag-needed MTU 0 (pre-RFC 1191)", one(errMsg(r4, h4, 3, 4, 0, h4, s4, 6, 40000, 443, 1500)), ""},
		// ptb_not_too_big
		{"IPv6 PTB about a packet that fit", one(errMsg(r6, h6, 2, 0, 1280, h6, s6, 17, 30000, 13000, 52)), "ptb_not_too_big"},
		{"IPv4 frag-needed about a packet that fit", one(errMsg(r4, h4, 3, 4, 1400, h4, s4, 6, 40000, 443, 600)), "ptb_not_too_big"},
		{"IPv4 frag-needed, BSD length bug allowed", one(errMsg(r4, h4, 3, 4, 1400, h4, s4, 6, 40000, 443, 1390)), ""},
		// quote_mismatch: three within a minute, not one
		{"quotes the receiver never sent, x3", seq(errMsg(r4, h4, 3, 1, 0, addr("1.2.3.4"), addr("5.6.7.8"), 6, 0, 0, 40), ruleEpoch, 1, 3, nil), "quote_mismatch"},
		{"one quote the receiver never sent", one(errMsg(r4, h4, 3, 1, 0, addr("1.2.3.4"), addr("5.6.7.8"), 6, 0, 0, 40)), ""},
		{"host unreachables from a router", seq(errMsg(r4, h4, 3, 1, 0, h4, s4, 6, 40000, 80, 60), ruleEpoch, 2, 10, nil), ""},
		// malformed_quote
		{"errors quoting no IP header, x3", seq(synth.Msg{Src: r4, Dst: h4, Type: 11, Rest: append(make([]byte, 4), make([]byte, 28)...)}, ruleEpoch, 1, 3, nil), "malformed_quote"},
		// error_about_error
		{"an error about an error", one(errMsg(r4, h4, 3, 3, 0, h4, s4, 1, 3<<8|3, 0, 56)), "error_about_error"},
		{"time exceeded about an echo (traceroute)", one(errMsg(r4, h4, 11, 0, 0, h4, s4, 1, 8<<8, 0, 60)), ""},
		// source_quench
		{"source quench", one(errMsg(r4, h4, 4, 0, 0, h4, s4, 6, 40000, 80, 60)), "source_quench"},
		// reset_storm: guessed source ports of h4 at 200/s
		{"blind reset over guessed ports", seq(errMsg(r4, h4, 3, 3, 0, h4, s4, 6, 0, 443, 60), ruleEpoch, 200, 400, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 6, uint16(32768+i*7), 443, 60)
		}), "reset_storm"},
		// The ports seen over two epochs (reset_window long) are counted
		// as bits are set: 50 ports cycled for 10 s at 100/s never make 64,
		// however many epochs pass; 130 new ones in 0.65 s (across an
		// epoch's end when ruleEpoch is on one) do.
		{"50 ports cycled for 10 s", seq(errMsg(r4, h4, 3, 3, 0, h4, s4, 6, 0, 443, 60), ruleEpoch, 100, 1000, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 6, uint16(32768+(i%50)*7), 443, 60)
		}), ""},
		{"130 new ports across an epoch's end", seq(errMsg(r4, h4, 3, 3, 0, h4, s4, 6, 0, 443, 60), ruleEpoch.Add(1700*time.Millisecond), 200, 130, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 6, uint16(32768+i*7), 443, 60)
		}), "reset_storm"},
		{"a scanner meeting a REJECTing firewall", seq(errMsg(r4, h4, 3, 3, 0, h4, s4, 6, 0, 443, 60), ruleEpoch, 200, 400, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 6, 55555, uint16(1+i), 60)
		}), ""},
		{"port unreachables for UDP (DNS late answers)", seq(errMsg(r4, h4, 3, 3, 0, h4, s4, 17, 0, 53, 60), ruleEpoch, 50, 200, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 17, uint16(30000+i), 53, 60)
		}), ""},
		{"IPv6 time exceeded (traceroute6)", seq(errMsg(r6, h6, 3, 0, 0, h6, s6, 17, 40000, 33434, 60), ruleEpoch, 3, 9, nil), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			ev := firstStart(evs, "icmp_error_abuse")
			switch {
			case tc.want == "" && ev != nil:
				t.Fatalf("raised %v", ev.Extra)
			case tc.want == "":
				return
			case ev == nil:
				t.Fatalf("no alert, want reason %s", tc.want)
			}
			reasons, _ := ev.Extra["reasons"].(map[string]any)
			if n, _ := reasons[tc.want].(uint64); n == 0 {
				t.Errorf("reasons %v, want %s", reasons, tc.want)
			}
			if ev.Target != tc.frames[0].Target() {
				t.Errorf("target %v", ev.Target)
			}
		})
	}
}

func TestErrorAbuseTrustedReporters(t *testing.T) {
	cfg := rules.DefaultErrorAbuseConfig()
	cfg.TrustReporters = []string{"10.0.0.1"}
	m := errMsg(addr("10.0.0.1"), addr("10.0.0.5"), 4, 0, 0, addr("10.0.0.5"), addr("192.0.2.8"), 6, 1, 2, 40)
	if evs := replay(t, []synth.Frame{m.At(ruleEpoch)}, rules.NewErrorAbuse(cfg)); len(evs) != 0 {
		t.Fatalf("a trusted reporter's source quench raised %d events", len(evs))
	}
}

// crafted returns count frames of a synth.Crafted flood at rate per second.
func crafted(t testing.TB, c synth.Crafted, rate float64, count int) []synth.Frame {
	t.Helper()
	next, err := c.Gen()
	if err != nil {
		t.Fatal(err)
	}
	fs := make([]synth.Frame, count)
	for i := range fs {
		d, err := next(i)
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = synth.Frame{Time: ruleEpoch.Add(time.Duration(float64(i) / rate * float64(time.Second))), Data: d}
	}
	return fs
}

// A forger spraying forged errors over many receivers is one attack per
// forger (target: the reporter, receivers counted), where every receiver
// was one attack (11,998 of 12,000 errors at 200/s); errors to one host
// stay that host's attack, and genuine errors stay silent.
func TestErrorAbuseSpray(t *testing.T) {
	h4, r4, s4 := addr("10.0.0.5"), addr("10.0.0.1"), addr("192.0.2.80")
	forger := addr("203.0.113.66")
	spray := func(sources, count int) []synth.Frame {
		return crafted(t, synth.Crafted{Kind: synth.CraftPTBSpray, Sources: sources, Seed: 7}, 200, count)
	}
	traceroute := seq(errMsg(r4, h4, 11, 0, 0, h4, s4, 17, 40000, 33434, 60), ruleEpoch, 3, 30, func(i int, m *synth.Msg) {
		*m = errMsg(nth(addr("10.1.0.1"), i/3), h4, 11, 0, 0, h4, s4, 17, 40000, uint16(33434+i), 60)
	})
	// A forger hitting one host, then another 10 s later.
	slow := append(one(errMsg(forger, h4, 3, 4, 68, h4, s4, 6, 40000, 443, 1500)),
		errMsg(forger, addr("10.0.0.6"), 3, 4, 68, addr("10.0.0.6"), s4, 6, 40001, 443, 1500).At(ruleEpoch.Add(10*time.Second)))
	tests := []struct {
		name   string
		frames []synth.Frame
		want   []string // attacks started, sorted
		// receivers: the least receivers the first attack's end counts
		// (0: not a spray).
		receivers uint64
	}{
		{"one forger, 12,000 receivers", spray(0, 12000), []string{"icmp_error_abuse 203.0.113.66"}, 11000},
		{"two forgers, 12,000 receivers", spray(2, 12000), []string{"icmp_error_abuse " + crafted(t, synth.Crafted{Kind: synth.CraftPTBSpray, Sources: 2, Seed: 7}, 200, 2)[0].Src().String(),
			"icmp_error_abuse " + crafted(t, synth.Crafted{Kind: synth.CraftPTBSpray, Sources: 2, Seed: 7}, 200, 2)[1].Src().String()}, 5000},
		{"one forged error to one host", one(errMsg(forger, h4, 3, 4, 68, h4, s4, 6, 40000, 443, 1500)), []string{"icmp_error_abuse 10.0.0.5"}, 0},
		{"forged errors to one host, 20 at 10/s", seq(errMsg(forger, h4, 3, 4, 68, h4, s4, 6, 40000, 443, 1500), ruleEpoch, 10, 20, nil), []string{"icmp_error_abuse 10.0.0.5"}, 0},
		{"one host, then another 10 s later", slow, []string{"icmp_error_abuse 10.0.0.5", "icmp_error_abuse 203.0.113.66"}, 0},
		{"genuine PMTUD: one frag-needed (MTU 1400)", one(errMsg(r4, h4, 3, 4, 1400, h4, s4, 6, 40000, 443, 1500)), nil, 0},
		{"genuine PMTUD to 50 hosts from one router", seq(errMsg(r4, h4, 3, 4, 1400, h4, s4, 6, 40000, 443, 1500), ruleEpoch, 50, 50, func(i int, m *synth.Msg) {
			d := nth(addr("10.0.1.1"), i)
			*m = errMsg(r4, d, 3, 4, 1400, d, s4, 6, 40000, 443, 1500)
		}), nil, 0},
		{"traceroute: 10 routers' time exceeded", traceroute, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := replay(t, tc.frames, defaultRules(t)...)
			got := startsOf(evs)
			if !equal(got, tc.want) {
				t.Fatalf("started %d attacks %v, want %v", len(got), got, tc.want)
			}
			if tc.receivers == 0 {
				return
			}
			for _, ev := range evs {
				if ev.Phase != detector.PhaseEnd {
					continue
				}
				if n, _ := ev.Extra["receivers"].(uint64); n < tc.receivers || ev.Extra["receivers_estimated"] != true {
					t.Errorf("%v: receivers %v, want at least %d", ev.Target, ev.Extra["receivers"], tc.receivers)
				}
				if rs, _ := ev.Extra["reasons"].(map[string]any); rs["mtu_below_minimum"] == nil {
					t.Errorf("%v: reasons %v", ev.Target, rs)
				}
			}
		})
	}
}

func one(m synth.Msg) []synth.Frame { return []synth.Frame{m.At(ruleEpoch)} }

// TestErrorAbuseResetStormEpochs: reset_storm's epochs are the bucket
// index / 10 when reset_window is a whole number of buckets and now /
// reset_window otherwise; windows of either kind give the same verdicts
// on the storms and their benign twins.
func TestErrorAbuseResetStormEpochs(t *testing.T) {
	h4, s4 := addr("10.0.0.5"), addr("192.0.2.80")
	ports := func(start time.Time, rate float64, count int, port func(i int) uint16) []synth.Frame {
		return seq(errMsg(s4, h4, 3, 3, 0, h4, s4, 6, 0, 443, 60), start, rate, count, func(i int, m *synth.Msg) {
			*m = errMsg(s4, h4, 3, 3, 0, h4, s4, 6, port(i), 443, 60)
		})
	}
	cases := []struct {
		name   string
		frames []synth.Frame
		storm  bool
	}{
		{"guessed ports at 200/s", ports(ruleEpoch, 200, 400, func(i int) uint16 { return uint16(32768 + i*7) }), true},
		{"130 new ports across an epoch's end", ports(ruleEpoch.Add(1700*time.Millisecond), 200, 130, func(i int) uint16 { return uint16(32768 + i*7) }), true},
		{"50 ports cycled for 10 s", ports(ruleEpoch, 100, 1000, func(i int) uint16 { return uint16(32768 + (i%50)*7) }), false},
	}
	for _, w := range []time.Duration{2 * time.Second, 2*time.Second + 3, 1500*time.Millisecond + 7} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%v/%s", w, tc.name), func(t *testing.T) {
				cfg := rules.DefaultErrorAbuseConfig()
				cfg.ResetWindow = w
				ev := firstStart(replay(t, tc.frames, rules.NewErrorAbuse(cfg)), "icmp_error_abuse")
				var storm bool
				if ev != nil {
					reasons, _ := ev.Extra["reasons"].(map[string]any)
					storm = reasons["reset_storm"] != nil
				}
				if storm != tc.storm {
					t.Errorf("reset_storm raised %v, want %v", storm, tc.storm)
				}
			})
		}
	}
}

// TestErrorAbuseResetStormNeedsTheReceiversQuote: hard errors at a
// storm's rate over guessed ports, but quoting another host's packets,
// are quote mismatches (the receiver never sent them), never a reset
// storm of the receiver's connections.
func TestErrorAbuseResetStormNeedsTheReceiversQuote(t *testing.T) {
	h4, s4, other := addr("10.0.0.5"), addr("192.0.2.80"), addr("10.0.0.77")
	frames := seq(errMsg(s4, h4, 3, 3, 0, other, s4, 6, 0, 443, 60), ruleEpoch, 200, 400, func(i int, m *synth.Msg) {
		*m = errMsg(s4, h4, 3, 3, 0, other, s4, 6, uint16(32768+i*7), 443, 60)
	})
	var reasons map[string]any
	for _, ev := range replay(t, frames, defaultRules(t)...) {
		if ev.Rule.Name == "icmp_error_abuse" && ev.Phase == detector.PhaseEnd {
			reasons, _ = ev.Extra["reasons"].(map[string]any)
		}
	}
	if reasons["quote_mismatch"] == nil || reasons["reset_storm"] != nil {
		t.Errorf("reasons %v, want quote_mismatch and no reset_storm", reasons)
	}
}
