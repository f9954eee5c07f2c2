package detector_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// warmRule records, in order, the calls the engine makes to it.
type warmRule struct {
	name  string
	calls *[]string
}

func (r *warmRule) Info() detector.RuleInfo {
	return detector.RuleInfo{Name: r.name, SignatureID: 1, Severity: 3}
}
func (r *warmRule) log(s string)                                { *r.calls = append(*r.calls, r.name+"."+s) }
func (r *warmRule) Warm()                                       { r.log("Warm") }
func (r *warmRule) Classify(*detector.Packet)                   { r.log("Classify") }
func (r *warmRule) Observe(*detector.Packet, detector.Reporter) { r.log("Observe") }
func (r *warmRule) Shadow(*detector.Packet)                     { r.log("Shadow") }
func (r *warmRule) Tick(time.Time, detector.Reporter)           {}

// TestWarmComesOnceBeforeTheFirstPacket: a Warmer is warmed once, right
// before the first packet it is handed — whether that packet comes in full
// or as a shadow — and not for ticks or for traffic no rule sees; a rule
// installed by SetRules is warmed before its own first packet.
func TestWarmComesOnceBeforeTheFirstPacket(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	echo, err := synth.EchoFrame(synth.Echo{Src: a, Dst: b})
	if err != nil {
		t.Fatal(err)
	}
	tcp := tcpFrame(t, a, b)
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		first func(e *detector.Engine, ts time.Time)
		want  string
	}{
		{"full packet", func(e *detector.Engine, ts time.Time) { e.HandleFrame(detector.LinkEthernet, echo, ts, len(echo)) },
			"r.Warm r.Classify r.Observe"},
		{"shadow", func(e *detector.Engine, ts time.Time) {
			e.HandleShadowFrame(detector.LinkEthernet, echo, ts, len(echo))
		},
			"r.Warm r.Shadow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), &warmRule{"r", &calls})
			if err != nil {
				t.Fatal(err)
			}
			e.Advance(t0)
			e.Advance(t0.Add(time.Second)) // ticks
			e.HandleFrame(detector.LinkEthernet, tcp, t0.Add(time.Second), len(tcp))
			if len(calls) != 0 {
				t.Fatalf("before any packet a rule sees: %v, want no call", calls)
			}
			tc.first(e, t0.Add(2*time.Second))
			if got := strings.Join(calls, " "); got != tc.want {
				t.Fatalf("first packet: %s, want %s", got, tc.want)
			}
			calls = nil
			e.HandleFrame(detector.LinkEthernet, echo, t0.Add(3*time.Second), len(echo))
			if got := strings.Join(calls, " "); got != "r.Classify r.Observe" {
				t.Fatalf("second packet: %s, want no Warm", got)
			}
			calls = nil
			e.SetRules(&warmRule{"s", &calls})
			e.HandleFrame(detector.LinkEthernet, echo, t0.Add(4*time.Second), len(echo))
			if got := strings.Join(calls, " "); got != "s.Warm s.Classify s.Observe" {
				t.Fatalf("after SetRules: %s, want the new rule warmed first", got)
			}
		})
	}
}
