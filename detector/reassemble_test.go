package detector_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// reasmFrames is traffic the engine reassembles: an echo request of 1,400
// data bytes inside GRE and inside IP-in-IP, each carrier in two
// fragments, and a Router Advertisement in two fragments (the real
// router's: rogue_ra reports it as fragmented once per attack). idAt gives,
// per frame, where its IPv4 id (or the low half of the IPv6
// identification) lies.
func reasmFrames(tb testing.TB) (frames [][]byte, idAt []int) {
	tb.Helper()
	echo, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("10.77.0.5"), PayloadLen: 1400})
	if err != nil {
		tb.Fatal(err)
	}
	for _, kind := range []string{synth.WrapGRE, synth.WrapIPinIP} {
		w, err := synth.Wrap(kind, echo)
		if err != nil {
			tb.Fatal(err)
		}
		parts, err := synth.FragmentFrame(w, 1400, 1)
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range parts {
			frames, idAt = append(frames, p), append(idAt, 14+4)
		}
	}
	mac := synth.MAC(1)
	ra := synth.Msg{Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("ff02::1"), SrcMAC: mac, Type: 134,
		Rest: synth.RA(1800, 0, synth.PrefixOpt(netip.MustParsePrefix("2001:db8:1::/64")), synth.LinkAddrOpt(1, mac))}
	parts, err := synth.FragmentFrame(ra.Frame(), 32, 1)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range parts {
		frames, idAt = append(frames, p), append(idAt, 14+40+6)
	}
	return frames, idAt
}

// TestReassemblyDoesNotAllocate: reassembling carriers and ND trains, and
// handling what they reassemble to, allocates nothing in steady state.
func TestReassemblyDoesNotAllocate(t *testing.T) {
	frames, idAt := reasmFrames(t)
	e, _ := newEngine(t)
	ts := epoch
	id := uint16(1)
	feed := func() {
		id++
		for i, b := range frames {
			setID(b, idAt[i], id)
			ts = ts.Add(5 * time.Millisecond)
			e.HandleFrame(detector.LinkEthernet, b, ts, len(b))
		}
	}
	for i := 0; i < 300; i++ {
		feed()
	}
	if allocs := testing.AllocsPerRun(500, feed); allocs != 0 {
		t.Fatalf("%.1f allocations per run of %d frames, want 0", allocs, len(frames))
	}
	st := e.Stats()
	if want := uint64((300 + 501) * 3); /* AllocsPerRun runs once more to warm up */ st.Reassembly.Completed != want || st.Reassembly.Len != 0 {
		t.Fatalf("reassembly %+v, want %d completed", st.Reassembly, want)
	}
	found := false
	for _, tb := range st.Tables {
		found = found || tb.Name == "reasm.trains" && tb.Cap == st.Reassembly.Cap
	}
	if !found {
		t.Fatalf("no reasm.trains table in %+v", st.Tables)
	}
}

// BenchmarkEngineReassembly measures decode + detection of carriers and ND
// messages in two fragments each (per fragment).
func BenchmarkEngineReassembly(b *testing.B) {
	frames, idAt := reasmFrames(b)
	e, _ := newEngine(b)
	ts := epoch
	b.ReportAllocs()
	n, id := 0, uint16(0)
	for b.Loop() {
		i := n % len(frames)
		if i == 0 {
			id++
		}
		f := frames[i]
		setID(f, idAt[i], id)
		ts = ts.Add(time.Microsecond)
		e.HandleFrame(detector.LinkEthernet, f, ts, len(f))
		n++
	}
}

// FuzzReassemble cuts random bytes into a fragmented carrier or ND train
// (the bytes are the carried datagram): the engine must take the
// fragments and whatever they reassemble to without panic.
//
//	go test -run '^$' -fuzz FuzzReassemble -fuzztime 60s ./detector/
func FuzzReassemble(f *testing.F) {
	frames, _ := reasmFrames(f)
	// The rules that read what reassembly yields (fresh ones per input
	// would cost most of the run: every rule's tables are large).
	fuzzRules := allRules(f)
	f.Add(frames[0][14+20+4:], uint8(47), uint16(64))
	f.Add(frames[2][14+20:], uint8(4), uint16(8))
	f.Add(frames[4][14+48:], uint8(58), uint16(16))
	f.Fuzz(func(t *testing.T, inner []byte, proto uint8, cut uint16) {
		e, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), fuzzRules...)
		if err != nil {
			t.Fatal(err)
		}
		v6 := proto == 58
		var frame []byte
		if v6 {
			frame = append(make([]byte, 14), synth.IPv6(netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1"), nil, proto, inner)...)
			frame[12], frame[13], frame[14+7] = 0x86, 0xdd, 255
		} else {
			frame = append(make([]byte, 14), synth.IPv4(synth.IPv4Header{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2"), Proto: proto}, inner)...)
			frame[12], frame[13] = 0x08, 0x00
		}
		size := max(int(cut)&^7, 8)
		parts, err := synth.FragmentFrame(frame, size, 7)
		if err != nil {
			return
		}
		for i := len(parts) - 1; i >= 0; i-- { // last first: the first fragment completes
			e.HandleFrame(detector.LinkEthernet, parts[i], epoch, len(parts[i]))
		}
		e.Close(detector.EndInputEnd)
	})
}
