package detector_test

import (
	"encoding/binary"
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
	// A port unreachable quoting the datagram v4a sent (a genuine error).
	out = append(out, synth.Msg{Src: v4b, Dst: v4a, Type: 3, Code: 3,
		Rest: synth.Unreach(0, synth.Quote(v4a, v4b, 17, 5353, 53, 60))}.Frame())
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

// allRules builds every rule with its defaults, wired as cmd/icmpids wires
// them (icmp_flood leaves smurf's packets to smurf).
func allRules(tb testing.TB) []detector.Rule {
	tb.Helper()
	rs, err := rules.Enabled(rules.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func newEngine(tb testing.TB, rs ...detector.Rule) (*detector.Engine, *int) {
	tb.Helper()
	if rs == nil {
		rs = allRules(tb)
	}
	events := new(int)
	e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { *events++ }), rs...)
	if err != nil {
		tb.Fatal(err)
	}
	return e, events
}

// smurfFrames is smurf-relevant traffic below smurf's thresholds: an echo
// request to a directed broadcast (layer-2 broadcast too), echo replies
// from reflectors to its source, and an IPv6 echo request to ff02::1.
func smurfFrames(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	add := func(b []byte, err error) {
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	victim, bcast := netip.MustParseAddr("10.0.2.7"), netip.MustParseAddr("10.0.2.255")
	add(synth.EchoFrame(synth.Echo{Src: victim, Dst: bcast, ID: 9, DstMAC: synth.GroupMAC(bcast)}))
	for i := 1; i <= 3; i++ {
		add(synth.EchoFrame(synth.Echo{Src: netip.AddrFrom4([4]byte{10, 0, 2, byte(20 + i)}), Dst: victim, ID: 9, Reply: true}))
	}
	g6 := netip.MustParseAddr("ff02::1")
	add(synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("2001:db8::77"), Dst: g6, ID: 3, DstMAC: synth.GroupMAC(g6)}))
	return out
}

// ndAndErrorFrames is traffic for the newer rules, below their levels: a
// router's RA, a solicitation and its answer, a genuine Packet Too Big, a
// lone valid-looking redirect, a port unreachable quoting TCP, echo data
// no ping sends (a tunnel pair gets state) and its echoed reply, and
// timestamp requests to a few hosts.
func ndAndErrorFrames(tb testing.TB) [][]byte {
	tb.Helper()
	r6, h6, g6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8:1::5"), netip.MustParseAddr("2001:db8:1::9")
	h4, r4 := netip.MustParseAddr("10.0.4.5"), netip.MustParseAddr("10.0.4.1")
	mac := synth.MAC(1)
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	data := make([]byte, 64)
	for i := range data {
		data[i] = byte(i*37 + 11)
	}
	echo := func(src, dst netip.Addr, typ uint8) []byte {
		return synth.Msg{Src: src, Dst: dst, Type: typ, Rest: append([]byte{0, 9, 0, 1}, data...)}.Frame()
	}
	return [][]byte{
		synth.Msg{Src: r6, Dst: netip.MustParseAddr("ff02::1"), SrcMAC: mac, Type: 134, Rest: synth.RA(1800, 0, synth.PrefixOpt(pfx), synth.LinkAddrOpt(1, mac))}.Frame(),
		synth.Msg{Src: h6, Dst: netip.MustParseAddr("ff02::1:ff00:9"), Type: 135, Rest: synth.NS(g6, synth.LinkAddrOpt(1, synth.MAC(5)))}.Frame(),
		synth.Msg{Src: g6, Dst: h6, SrcMAC: synth.MAC(9), Type: 136, Rest: synth.NA(g6, false, true, true, synth.LinkAddrOpt(2, synth.MAC(9)))}.Frame(),
		synth.Msg{Src: r6, Dst: h6, Type: 2, Rest: synth.Unreach(1400, synth.Quote(h6, g6, 6, 40000, 443, 1500))}.Frame(),
		synth.Msg{Src: r4, Dst: h4, Type: 5, Code: 1, Rest: append([]byte{10, 0, 4, 2}, synth.Quote(h4, netip.MustParseAddr("192.0.2.8"), 6, 1, 2, 60)...)}.Frame(),
		synth.Msg{Src: r4, Dst: h4, Type: 3, Code: 3, Rest: synth.Unreach(0, synth.Quote(h4, r4, 6, 40001, 80, 60))}.Frame(),
		echo(h4, r4, 8), echo(r4, h4, 0),
		synth.Msg{Src: h4, Dst: netip.MustParseAddr("10.0.4.20"), Type: 13, Rest: make([]byte, 16)}.Frame(),
		synth.Msg{Src: h4, Dst: netip.MustParseAddr("10.0.4.21"), Type: 13, Rest: make([]byte, 16)}.Frame(),
	}
}

// fragTrains returns the frames of a complete fragmented ping (IPv4, 3,000
// bytes in three fragments) and of a complete IPv6 one, and where each
// frame's fragment id lies, so a test can give every train a new id.
func fragTrains(tb testing.TB) (frames [][]byte, idAt []int) {
	tb.Helper()
	for _, pair := range [][2]string{{"10.0.3.1", "10.0.3.2"}, {"2001:db8::31", "2001:db8::32"}} {
		src, dst := netip.MustParseAddr(pair[0]), netip.MustParseAddr(pair[1])
		d, pieces := synth.PingTrain(src, dst, 100, 3000, 1232)
		for _, pc := range pieces {
			b, err := d.Frame(pc)
			if err != nil {
				tb.Fatal(err)
			}
			frames = append(frames, b)
			if src.Is4() {
				idAt = append(idAt, 14+4) // IPv4 id, 16 bits
			} else {
				idAt = append(idAt, 14+40+4+2) // low 16 bits of the IPv6 identification
			}
		}
	}
	return frames, idAt
}

// setID writes a 16-bit fragment id into frame b at off.
func setID(b []byte, off int, id uint16) { b[off], b[off+1] = byte(id>>8), byte(id) }

// TestEngineDoesNotAllocate pins the hot path's promise: decode and
// detection of a mixed stream, with every rule on, allocate nothing per
// packet in steady state. The stream holds echo requests from spoofed
// sources, replies, ICMP errors, TCP, malformed frames, complete fragment
// trains (a new id each round), a middle fragment of a train that never
// completes (a new id each round), and smurf-relevant traffic (broadcast
// and multicast echo requests, replies from reflectors).
func TestEngineDoesNotAllocate(t *testing.T) {
	frames := append(mixFrames(t), smurfFrames(t)...)
	frames = append(frames, ndAndErrorFrames(t)...)
	trains, idAt := fragTrains(t)
	frames = append(frames, trains...)
	udpFrag := frames[len(mixFrames(t))-3] // mixFrames' UDP middle fragment
	e, events := newEngine(t)
	ts := epoch
	step := 5 * time.Millisecond // ~200 frames/s in total, a broadcast ping every 0.2 s: no alerts
	id := uint16(1)
	feed := func() {
		id++
		for i, b := range trains {
			setID(b, idAt[i], id)
		}
		setID(udpFrag, 14+4, id)
		for _, f := range frames {
			ts = ts.Add(step)
			e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		}
	}
	for i := 0; i < 300; i++ { // warm up: tables, ticks, sweeps
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
	if st.Decode[detector.ReasonTruncated] == 0 || st.ICMP == 0 || st.ICMPv6 == 0 || st.Fragments == 0 ||
		st.Frag.Completed == 0 || st.Frag.Trains < 1000 {
		t.Fatalf("mix did not exercise every path: %+v", st)
	}
	for _, name := range []string{"icmp_tunnel.pairs", "nd_spoof.bindings", "icmp_redirect.hosts", "icmp_redirect.routers", "ra_flood.targets", "nd_flood.keys"} {
		found := false
		for _, tb := range st.Tables {
			found = found || tb.Name == name && tb.Len > 0
		}
		if !found {
			t.Errorf("the mix left table %s empty: its rule's path went untested", name)
		}
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
		// Every packet a new source, as in a real spoofed flood (the
		// 4,096 frames alone would repeat theirs, and the rules' tables
		// would stay in cache): a multiplicative hash of n, written over
		// the IPv4 source (bytes 26-29 behind Ethernet).
		binary.BigEndian.PutUint32(f[26:30], uint32(n)*2654435761)
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

// BenchmarkRule measures decode + engine + one rule, each over a stream that
// exercises it: icmp_flood over a spoofed-source flood, the fragment rules
// over complete and never-completed fragment trains (a new id each
// round), smurf over broadcast requests and reflected replies.
//
//	go test -run '^$' -bench 'Rule|Engine|Decode' -benchmem ./detector/
func BenchmarkRule(b *testing.B) {
	floodFrames, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 5, Start: epoch, Rate: 1e6, Count: 4096}.Frames()
	if err != nil {
		b.Fatal(err)
	}
	var flood [][]byte
	for _, f := range floodFrames {
		flood = append(flood, f.Data)
	}
	trains, idAt := fragTrains(b)
	udpFrag := udpFragment(b, netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("10.0.0.5"))
	frags := append(append([][]byte{}, trains...), udpFrag)
	fragIDs := append(append([]int{}, idAt...), 14+4)
	smurf := smurfFrames(b)
	for i, r := range allRules(b) {
		name := r.Info().Name
		frames, ids := flood, []int(nil)
		switch {
		case i >= 1 && i <= 5:
			frames, ids = frags, fragIDs
		case name == "smurf":
			frames = smurf
		}
		b.Run(name, func(b *testing.B) {
			rs := allRules(b) // fresh state; keep rule i only
			e, _ := newEngine(b, rs[i])
			ts := epoch
			b.ReportAllocs()
			n, id := 0, uint16(0)
			for b.Loop() {
				j := n % len(frames)
				if ids != nil && j == 0 {
					id++
					for k, f := range frames {
						setID(f, ids[k], id)
					}
				}
				ts = ts.Add(time.Microsecond)
				e.HandleFrame(detector.LinkEthernet, frames[j], ts, len(frames[j]))
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkEngineShadow measures an engine handed echo requests as shadows
// (detector/shard sends them to the requester's engine when it is not the
// destination's): every rule on, a new spoofed source per packet.
//
//	go test -run '^$' -bench EngineShadow -benchmem ./detector/
func BenchmarkEngineShadow(b *testing.B) {
	f, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("10.9.0.1"), Dst: netip.MustParseAddr("10.0.0.5")})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := newEngine(b)
	ts := epoch
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		binary.BigEndian.PutUint32(f[26:30], uint32(n)*2654435761) // the IPv4 source
		ts = ts.Add(time.Microsecond)
		e.HandleShadowFrame(detector.LinkEthernet, f, ts, len(f))
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
}
