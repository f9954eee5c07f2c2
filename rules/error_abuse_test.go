package rules_test

import (
	"net/netip"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
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
	one := func(m synth.Msg) []synth.Frame { return []synth.Frame{m.At(ruleEpoch)} }
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
