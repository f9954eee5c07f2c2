package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// anomalyFrames are an echo request 5 GRE tunnels deep, behind 9 VLAN
// tags, under 20 MPLS labels, and inside a VXLAN header without its I
// flag.
func anomalyFrames(tb testing.TB) map[string][]byte {
	tb.Helper()
	echo, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("10.0.0.5")})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	b := echo
	for i := 0; i < 5; i++ {
		if b, err = synth.Wrap(synth.WrapGRE, b); err != nil {
			tb.Fatal(err)
		}
	}
	out["gre5"] = b
	ids := make([]uint16, 9)
	if out["vlan9"], err = synth.Encap(synth.Link{Type: synth.LinkEthernet, VLANs: ids}, echo[14:]); err != nil {
		tb.Fatal(err)
	}
	m := append(append([]byte{}, echo[:12]...), 0x88, 0x47)
	for i := 0; i < 20; i++ {
		m = append(m, 0, 1, byte(i/19), 64)
	}
	out["mpls20"] = append(m, echo[14:]...)
	v, err := synth.Wrap(synth.WrapVXLAN, echo)
	if err != nil {
		tb.Fatal(err)
	}
	v[14+20+8] = 0
	out["vxlan-no-i"] = v
	return out
}

// TestDecodeGiveUp: the decoder says why it gave up, and where the frame
// was heading; an MPLS stack of any depth is decoded.
func TestDecodeGiveUp(t *testing.T) {
	tests := map[string]struct {
		reason   detector.Reason
		anomaly  detector.Anomaly
		src, dst string // the Packet's, "" for none
	}{
		"gre5":       {detector.ReasonTunnelDepth, detector.AnomalyTunnelDepth, "", ""},
		"vlan9":      {detector.ReasonTunnelDepth, detector.AnomalyVLANDepth, "", ""},
		"mpls20":     {detector.ReasonOK, detector.AnomalyNone, "198.51.100.7", "10.0.0.5"},
		"vxlan-no-i": {detector.ReasonTunnelMalformed, detector.AnomalyMalformed, "", ""},
	}
	d := detector.NewDecoder()
	for name, f := range anomalyFrames(t) {
		tc := tests[name]
		var p detector.Packet
		r := d.Decode(detector.LinkEthernet, f, epoch, len(f), &p)
		if r != tc.reason || p.GaveUp != tc.anomaly {
			t.Errorf("%s: reason %v, anomaly %v; want %v, %v", name, r, p.GaveUp, tc.reason, tc.anomaly)
		}
		if tc.dst == "" && p.Src.IsValid() || tc.dst != "" && p.Dst.String() != tc.dst {
			t.Errorf("%s: packet %v > %v", name, p.Src, p.Dst)
		}
		if tc.anomaly != detector.AnomalyNone && !detector.RulesSee(&p) {
			t.Errorf("%s: RulesSee %v", name, detector.RulesSee(&p))
		}
	}
}

// TestAnomalyDoesNotAllocate: frames the decoder gives up on cost the
// engine and decode_anomaly no allocation.
func TestAnomalyDoesNotAllocate(t *testing.T) {
	var frames [][]byte
	for _, f := range anomalyFrames(t) {
		frames = append(frames, f)
	}
	e, events := newEngine(t)
	ts := epoch
	feed := func() {
		for _, f := range frames {
			ts = ts.Add(50 * time.Millisecond) // 80 frames/s: below decode_anomaly's level
			e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		}
	}
	for i := 0; i < 300; i++ {
		feed()
	}
	if allocs := testing.AllocsPerRun(500, feed); allocs != 0 {
		t.Fatalf("%.1f allocations per run of %d frames, want 0", allocs, len(frames))
	}
	if *events != 0 {
		t.Fatalf("%d events below every level", *events)
	}
	found := false
	for _, tb := range e.Stats().Tables {
		found = found || tb.Name == "decode_anomaly.targets" && tb.Len == 2
	}
	if !found {
		t.Fatalf("decode_anomaly did not see the given-up frames: %+v", e.Stats().Tables)
	}
}
