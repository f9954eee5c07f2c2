package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// mixFrames is a traffic mix for allocation and speed tests: echo requests
// from spoofed sources, echo replies, IPv6 echoes, an ICMP error, an IPv4
// fragment, TCP and UDP (which leave early), and malformed frames.
func mixFrames(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	v4a, v4b := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6")
	v6a, v6b := netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("2001:db8::6")
	for i := 0; i < 8; i++ {
		add(synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+1, true), Dst: v4a, Seq: uint16(i)}))
		add(synth.EchoFrame(synth.Echo{Src: synth.RandomAddr(uint64(i)*0x9e3779b97f4a7c15+3, false), Dst: v6a, Seq: uint16(i)}))
	}
	add(synth.EchoFrame(synth.Echo{Src: v4b, Dst: v4a, Reply: true}))
	add(synth.EchoFrame(synth.Echo{Src: v6b, Dst: v6a, Reply: true}))
	add(synth.EchoFrame(synth.Echo{Src: v4b, Dst: v4a, Type: 3, Code: 3}))
	out = append(out,
		tcpFrame(tb, v4b, v4a),
		udpFragment(tb, v4b, v4a),
		[]byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0x00}, // truncated IPv4
		[]byte{1, 2, 3}, // runt
	)
	return out
}

func tcpFrame(tb testing.TB, src, dst netip.Addr) []byte {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()},
		&layers.TCP{SrcPort: 40000, DstPort: 443, SYN: true, Window: 1024},
		gopacket.Payload(make([]byte, 500)))
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// udpFragment is a middle fragment (offset 1480, MF set) of a UDP datagram.
func udpFragment(tb testing.TB, src, dst netip.Addr) []byte {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 77, Flags: layers.IPv4MoreFragments, FragOffset: 185,
			Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()},
		gopacket.Payload(make([]byte, 1480)))
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func newEngine(tb testing.TB) (*detector.Engine, *int) {
	tb.Helper()
	events := new(int)
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { *events++ }),
		rules.NewFlood(rules.DefaultFloodConfig()))
	if err != nil {
		tb.Fatal(err)
	}
	return e, events
}

// TestEngineDoesNotAllocate pins the hot path's promise: decode and
// detection of a mixed stream allocate nothing per packet in steady state.
func TestEngineDoesNotAllocate(t *testing.T) {
	frames := mixFrames(t)
	e, events := newEngine(t)
	ts := epoch
	step := time.Millisecond // ~1,000 frames/s in total: no alerts
	feed := func() {
		for _, f := range frames {
			ts = ts.Add(step)
			e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		}
	}
	for i := 0; i < 200; i++ { // warm up: tables, ticks, sweeps
		feed()
	}
	allocs := testing.AllocsPerRun(500, feed)
	if allocs != 0 {
		t.Fatalf("%.1f allocations per run of %d frames, want 0", allocs, len(frames))
	}
	if *events != 0 {
		t.Fatalf("the steady-state mix raised %d events; it must stay below every threshold", *events)
	}
	st := e.Stats()
	if st.Decode[detector.ReasonTruncated] == 0 || st.ICMP == 0 || st.ICMPv6 == 0 || st.Fragments == 0 {
		t.Fatalf("mix did not exercise every path: %+v", st)
	}
}

// BenchmarkEngine measures decode + detection over the mixed stream.
func BenchmarkEngine(b *testing.B) {
	frames := mixFrames(b)
	e, _ := newEngine(b)
	ts := epoch
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		f := frames[n%len(frames)]
		ts = ts.Add(time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "pkts/s")
}

// BenchmarkEngineSpoofedFlood measures an echo flood where every packet has
// a new spoofed source, to one victim, at 1 M pps of packet time.
func BenchmarkEngineSpoofedFlood(b *testing.B) {
	frames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 5, Start: epoch, Rate: 1e6, Count: 4096}.Frames()
	if err != nil {
		b.Fatal(err)
	}
	e, _ := newEngine(b)
	ts := epoch
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		f := frames[n%len(frames)].Data
		ts = ts.Add(time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "pkts/s")
}

// BenchmarkDecode measures the decoder alone.
func BenchmarkDecode(b *testing.B) {
	frames := mixFrames(b)
	d := detector.NewDecoder()
	var p detector.Packet
	b.ReportAllocs()
	n := 0
	start := time.Now()
	for b.Loop() {
		f := frames[n%len(frames)]
		d.Decode(detector.LinkEthernet, f, epoch, len(f), &p)
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "pkts/s")
}
