package capture_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// epoch is the fixed packet time test captures start at.
var epoch = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

var (
	src4 = netip.MustParseAddr("198.51.100.7")
	dst4 = netip.MustParseAddr("10.0.0.5")
	src6 = netip.MustParseAddr("2001:db8::7")
	dst6 = netip.MustParseAddr("2001:db8::5")
)

// want is what a test packet must decode to.
type want struct {
	src, dst      netip.Addr
	icmpType      uint8
	id, seq       uint16
	hasICMP       bool
	proto         uint8
	fragment, mf  bool
	fragOffset    int
	fragID        uint32
	l2Broadcast   bool
	decodedReason detector.Reason
}

func (w want) String() string {
	return fmt.Sprintf("%v>%v proto=%d icmp=%v type=%d id=%#x seq=%d frag=%v mf=%v off=%d fragid=%#x l2bcast=%v reason=%v",
		w.src, w.dst, w.proto, w.hasICMP, w.icmpType, w.id, w.seq, w.fragment, w.mf, w.fragOffset, w.fragID, w.l2Broadcast, w.decodedReason)
}

// testPacket is an IP packet and its expected decoding.
type testPacket struct {
	name string
	ip   []byte
	want want
}

func echo4(id, seq uint16) testPacket {
	return testPacket{"ipv4 echo request",
		synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 1, ID: seq}, synth.ICMPEcho(false, 8, id, seq, 56)),
		want{src: src4, dst: dst4, icmpType: 8, id: id, seq: seq, hasICMP: true, proto: 1, fragID: uint32(seq)}}
}

func echo6(id, seq uint16) testPacket {
	return testPacket{"ipv6 echo request",
		synth.IPv6(src6, dst6, nil, 58, synth.ICMPv6Checksum(src6, dst6, synth.ICMPEcho(true, 128, id, seq, 56))),
		want{src: src6, dst: dst6, icmpType: 128, id: id, seq: seq, hasICMP: true, proto: 58}}
}

// extraPackets are carried over Ethernet only: fragments and extension headers.
func extraPackets() []testPacket {
	icmp := synth.ICMPEcho(false, 8, 9, 1, 1472)
	frag6 := synth.ICMPv6Checksum(src6, dst6, synth.ICMPEcho(true, 128, 9, 2, 1400))
	return []testPacket{
		{"ipv4 first fragment", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 1, ID: 0x1234, MF: true}, icmp[:1480]),
			want{src: src4, dst: dst4, icmpType: 8, id: 9, seq: 1, hasICMP: true, proto: 1, fragment: true, mf: true, fragID: 0x1234}},
		{"ipv4 last fragment", synth.IPv4(synth.IPv4Header{Src: src4, Dst: dst4, Proto: 1, ID: 0x1234, FragOffset: 1480}, icmp[1480:]),
			want{src: src4, dst: dst4, proto: 1, fragment: true, fragOffset: 1480, fragID: 0x1234}},
		{"ipv6 second fragment", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.FragmentHeader(1232, false, 0xabcdef)}, 58, frag6[1232:]),
			want{src: src6, dst: dst6, proto: 58, fragment: true, fragOffset: 1232, fragID: 0xabcdef}},
		{"ipv6 hbh+ah+dstopts echo", synth.IPv6(src6, dst6, []synth.IPv6Ext{synth.HopByHop(), synth.AH(), synth.DestOpts()}, 58,
			synth.ICMPEcho(true, 128, 0x77, 3, 8)),
			want{src: src6, dst: dst6, icmpType: 128, id: 0x77, seq: 3, hasICMP: true, proto: 58}},
	}
}

// linkCase is one link-layer encapsulation to round-trip.
type linkCase struct {
	name   string
	link   synth.Link
	v4, v6 bool
	extra  bool
}

func linkCases() []linkCase {
	return []linkCase{
		{name: "ethernet", link: synth.Link{Type: synth.LinkEthernet}, v4: true, v6: true, extra: true},
		{name: "ethernet broadcast", link: synth.Link{Type: synth.LinkEthernet, Broadcast: true}, v4: true, v6: true},
		{name: "ethernet 802.1Q", link: synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{100}}, v4: true, v6: true, extra: true},
		{name: "ethernet QinQ", link: synth.Link{Type: synth.LinkEthernet, VLANs: []uint16{10, 20}, QinQ: true, Broadcast: true}, v4: true, v6: true, extra: true},
		{name: "linux sll", link: synth.Link{Type: synth.LinkLinuxSLL}, v4: true, v6: true},
		{name: "linux sll broadcast", link: synth.Link{Type: synth.LinkLinuxSLL, Broadcast: true}, v4: true, v6: true},
		{name: "linux sll2", link: synth.Link{Type: synth.LinkLinuxSLL2}, v4: true, v6: true, extra: true},
		{name: "linux sll2 broadcast", link: synth.Link{Type: synth.LinkLinuxSLL2, Broadcast: true}, v4: true, v6: true},
		{name: "raw 101", link: synth.Link{Type: synth.LinkRaw}, v4: true, v6: true, extra: true},
		{name: "raw ipv4 228", link: synth.Link{Type: synth.LinkIPv4}, v4: true},
		{name: "raw ipv6 229", link: synth.Link{Type: synth.LinkIPv6}, v6: true},
		{name: "null af6 bsd", link: synth.Link{Type: synth.LinkNull, AF6: synth.AFInet6BSD}, v4: true, v6: true},
		{name: "null af6 freebsd", link: synth.Link{Type: synth.LinkNull, AF6: synth.AFInet6FreeBSD}, v4: true, v6: true},
		{name: "null af6 darwin", link: synth.Link{Type: synth.LinkNull, AF6: synth.AFInet6Darwin}, v4: true, v6: true},
		{name: "loop 108", link: synth.Link{Type: synth.LinkLoop}, v4: true, v6: true},
	}
}

// packets returns the test packets c carries, the frames and their expectations.
func (c linkCase) packets(t *testing.T) ([]synth.Frame, []testPacket) {
	t.Helper()
	var tps []testPacket
	if c.v4 {
		tps = append(tps, echo4(0x4242, 1))
	}
	if c.v6 {
		tps = append(tps, echo6(0x4243, 2))
	}
	if c.extra {
		tps = append(tps, extraPackets()...)
	}
	frames := make([]synth.Frame, len(tps))
	for i, tp := range tps {
		data, err := synth.Encap(c.link, tp.ip)
		if err != nil {
			t.Fatalf("%s: %v", tp.name, err)
		}
		frames[i] = synth.Frame{Time: epoch.Add(time.Duration(i) * time.Millisecond), Data: data}
	}
	return frames, tps
}

// writePcapgo writes frames with gopacket's pcapgo writer (link types up to 255).
func writePcapgo(t *testing.T, path string, lt uint16, frames []synth.Frame) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, layers.LinkType(lt)); err != nil {
		t.Fatal(err)
	}
	for _, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(fr.Data), Length: len(fr.Data)}
		if err := w.WritePacket(ci, fr.Data); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path string, write func(io.Writer) error) {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every frame of path.
func readAll(t *testing.T, path string) []capture.Frame {
	t.Helper()
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	defer r.Close()
	var out []capture.Frame
	for {
		fr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(out), err)
		}
		fr.Data = bytes.Clone(fr.Data)
		out = append(out, fr)
	}
	if r.Frames() != uint64(len(out)) {
		t.Errorf("Frames() = %d, read %d", r.Frames(), len(out))
	}
	return out
}

func checkPacket(t *testing.T, name string, fr capture.Frame, w want) {
	t.Helper()
	var p detector.Packet
	reason := detector.NewDecoder().Decode(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length, &p)
	if reason != w.decodedReason {
		t.Errorf("%s: reason %v, want %v", name, reason, w.decodedReason)
	}
	got := want{src: p.Src, dst: p.Dst, icmpType: p.ICMPType, id: p.ICMPID, seq: p.ICMPSeq, hasICMP: p.HasICMP,
		proto: p.Proto, fragment: p.Fragment, mf: p.MoreFragments, fragOffset: p.FragOffset, fragID: p.FragID,
		l2Broadcast: p.L2Broadcast, decodedReason: reason}
	if got != w {
		t.Errorf("%s:\n got %v\nwant %v", name, got, w)
	}
	if !p.Time.Equal(fr.Timestamp) {
		t.Errorf("%s: time %v, want %v", name, p.Time, fr.Timestamp)
	}
}

// TestLinkTypeRoundTrip writes each link type as a pcap, reads it back and
// decodes every frame.
func TestLinkTypeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range linkCases() {
		t.Run(c.name, func(t *testing.T) {
			frames, tps := c.packets(t)
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".pcap")
			if c.link.Type <= 0xff {
				writePcapgo(t, path, c.link.Type, frames)
			} else { // pcapgo cannot write LINKTYPE_LINUX_SLL2 (276): its LinkType is a uint8
				writeFile(t, path, func(w io.Writer) error {
					return synth.WritePcapOpts(w, synth.PcapOptions{LinkType: c.link.Type, Nanos: true}, frames)
				})
			}
			got := readAll(t, path)
			if len(got) != len(frames) {
				t.Fatalf("read %d frames, wrote %d", len(got), len(frames))
			}
			for i, fr := range got {
				if fr.LinkType != c.link.Type {
					t.Errorf("frame %d: link type %d, want %d", i, fr.LinkType, c.link.Type)
				}
				if !fr.Timestamp.Equal(frames[i].Time) || !bytes.Equal(fr.Data, frames[i].Data) || fr.Length != len(frames[i].Data) {
					t.Errorf("frame %d differs from what was written", i)
				}
				w := tps[i].want
				w.l2Broadcast = c.link.Broadcast
				checkPacket(t, tps[i].name, fr, w)
			}
		})
	}
}

// TestPcapngInterfaces writes one pcapng holding an interface per link type,
// SLL2 included, with packets interleaved across them, in both byte orders.
func TestPcapngInterfaces(t *testing.T) {
	for _, bigEndian := range []bool{false, true} {
		t.Run(fmt.Sprintf("big-endian=%v", bigEndian), func(t *testing.T) {
			var ifaces []synth.NgInterface
			var pkts []synth.NgPacket
			var wants []want
			var names []string
			cases := linkCases()
			perIface := make([][]synth.Frame, len(cases))
			perWant := make([][]testPacket, len(cases))
			for i, c := range cases {
				resol := uint8(0)
				if i%2 == 1 {
					resol = 9 // nanoseconds on every other interface
				}
				ifaces = append(ifaces, synth.NgInterface{LinkType: c.link.Type, TSResol: resol})
				perIface[i], perWant[i] = c.packets(t)
			}
			// Interleave: packet j of every interface, then j+1.
			for j := 0; ; j++ {
				added := false
				for i, fs := range perIface {
					if j < len(fs) {
						fr := fs[j]
						fr.Time = epoch.Add(time.Duration(len(pkts)) * time.Millisecond)
						pkts = append(pkts, synth.NgPacket{Interface: i, Frame: fr})
						w := perWant[i][j].want
						w.l2Broadcast = cases[i].link.Broadcast
						wants = append(wants, w)
						names = append(names, cases[i].name+": "+perWant[i][j].name)
						added = true
					}
				}
				if !added {
					break
				}
			}
			path := filepath.Join(t.TempDir(), "multi.pcapng")
			writeFile(t, path, func(w io.Writer) error { return synth.WritePcapng(w, bigEndian, ifaces, pkts) })
			got := readAll(t, path)
			if len(got) != len(pkts) {
				t.Fatalf("read %d frames, wrote %d", len(got), len(pkts))
			}
			for i, fr := range got {
				if want := ifaces[pkts[i].Interface].LinkType; fr.LinkType != want {
					t.Errorf("%s: link type %d, want %d", names[i], fr.LinkType, want)
				}
				if !fr.Timestamp.Equal(pkts[i].Time.Truncate(time.Microsecond)) && !fr.Timestamp.Equal(pkts[i].Time) {
					t.Errorf("%s: time %v, want %v", names[i], fr.Timestamp, pkts[i].Time)
				}
				checkPacket(t, names[i], fr, wants[i])
			}
		})
	}
}

// TestFileFormats reads the same frames from pcap (µs and ns, both byte
// orders), pcapng (µs and ns, both byte orders) and their gzip forms.
func TestFileFormats(t *testing.T) {
	frames, _ := linkCases()[0].packets(t)
	for i := range frames {
		frames[i].Time = epoch.Add(time.Duration(i) * 1001 * time.Nanosecond)
	}
	type format struct {
		name  string
		nanos bool
		write func(io.Writer) error
	}
	var formats []format
	for _, be := range []bool{false, true} {
		for _, ns := range []bool{false, true} {
			o := synth.PcapOptions{LinkType: synth.LinkEthernet, Nanos: ns, BigEndian: be}
			formats = append(formats, format{fmt.Sprintf("pcap nanos=%v big-endian=%v", ns, be), ns,
				func(w io.Writer) error { return synth.WritePcapOpts(w, o, frames) }})
			resol := uint8(6)
			if ns {
				resol = 9
			}
			var pkts []synth.NgPacket
			for _, f := range frames {
				pkts = append(pkts, synth.NgPacket{Frame: f})
			}
			formats = append(formats, format{fmt.Sprintf("pcapng nanos=%v big-endian=%v", ns, be), ns,
				func(w io.Writer) error {
					return synth.WritePcapng(w, be, []synth.NgInterface{{LinkType: synth.LinkEthernet, TSResol: resol}}, pkts)
				}})
		}
	}
	dir := t.TempDir()
	for i, f := range formats {
		for _, gz := range []bool{false, true} {
			name := f.name
			if gz {
				name += " gzip"
			}
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(dir, fmt.Sprintf("f%d-%v", i, gz))
				writeFile(t, path, func(w io.Writer) error {
					if !gz {
						return f.write(w)
					}
					zw := gzip.NewWriter(w)
					if err := f.write(zw); err != nil {
						return err
					}
					return zw.Close()
				})
				got := readAll(t, path)
				if len(got) != len(frames) {
					t.Fatalf("read %d frames, want %d", len(got), len(frames))
				}
				for j, fr := range got {
					want := frames[j].Time
					if !f.nanos {
						want = want.Truncate(time.Microsecond)
					}
					if !fr.Timestamp.Equal(want) || fr.Timestamp.Location() != time.UTC {
						t.Errorf("frame %d: time %v, want %v UTC", j, fr.Timestamp, want)
					}
					if !bytes.Equal(fr.Data, frames[j].Data) || fr.CaptureLength != len(fr.Data) || fr.LinkType != synth.LinkEthernet {
						t.Errorf("frame %d: data, length or link type differ", j)
					}
				}
			})
		}
	}
}

// TestStdin reads a capture from standard input ("-").
func TestStdin(t *testing.T) {
	frames, _ := linkCases()[0].packets(t)
	path := filepath.Join(t.TempDir(), "in.pcap")
	writePcapgo(t, path, synth.LinkEthernet, frames)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	t.Cleanup(func() { os.Stdin = old })
	r, err := capture.OpenFile("-")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Name() != "standard input" {
		t.Errorf("Name() = %q", r.Name())
	}
	n := 0
	for ; ; n++ {
		if _, err := r.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n != len(frames) {
		t.Errorf("read %d frames from stdin, want %d", n, len(frames))
	}
}

// TestFileErrors checks that every bad input gives one line naming the file
// and the cause, classified with errors.Is.
func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	frames, _ := linkCases()[0].packets(t)
	var pcapBuf, ngBuf bytes.Buffer
	if err := synth.WritePcapOpts(&pcapBuf, synth.PcapOptions{LinkType: 1}, frames); err != nil {
		t.Fatal(err)
	}
	var pkts []synth.NgPacket
	for _, f := range frames {
		pkts = append(pkts, synth.NgPacket{Frame: f})
	}
	if err := synth.WritePcapng(&ngBuf, false, []synth.NgInterface{{LinkType: 1}}, pkts); err != nil {
		t.Fatal(err)
	}
	pcapBytes, ngBytes := pcapBuf.Bytes(), ngBuf.Bytes()
	firstRec := 24 + 16 + len(frames[0].Data) // end of the first pcap record
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i>>3)
	}
	// A pcap record claiming 3 GB, and a pcapng packet block whose
	// captured length exceeds its block.
	hugeRec := bytes.Clone(pcapBytes[:firstRec])
	hugeRec = append(hugeRec, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0xc0)
	badNg := bytes.Clone(ngBytes)
	epb := bytes.Index(badNg[28:], []byte{6, 0, 0, 0}) + 28 // first enhanced packet block
	badNg[epb+20], badNg[epb+21], badNg[epb+22] = 0xff, 0xff, 0x0f

	cases := []struct {
		name     string
		content  []byte // nil: see path
		path     string // overrides the file
		atOpen   bool   // the error comes from OpenFile, not Next
		is       error
		contains string
		frames   int // frames read before the error
	}{
		{name: "missing", path: filepath.Join(dir, "nope.pcap"), atOpen: true, is: os.ErrNotExist, contains: "no such file"},
		{name: "directory", path: dir, atOpen: true, contains: "is a directory"},
		{name: "empty", content: []byte{}, atOpen: true, is: capture.ErrNotCapture, contains: "empty"},
		{name: "three bytes", content: []byte{0xd4, 0xc3, 0xb2}, atOpen: true, is: capture.ErrNotCapture, contains: "only 3 bytes"},
		{name: "random bytes", content: random, atOpen: true, is: capture.ErrNotCapture},
		{name: "text", content: []byte("hello, this is not a capture\n"), atOpen: true, is: capture.ErrNotCapture, contains: "68 65 6c 6c"},
		{name: "gzip of text", content: gz([]byte("hello, this is not a capture\n")), atOpen: true, is: capture.ErrNotCapture},
		{name: "truncated pcap header", content: pcapBytes[:10], atOpen: true, is: capture.ErrTruncated, contains: "pcap header"},
		{name: "truncated gzip header", content: gz(pcapBytes)[:5], atOpen: true, is: capture.ErrTruncated},
		{name: "pcap bad version", content: append([]byte{0xd4, 0xc3, 0xb2, 0xa1, 9, 0}, pcapBytes[6:]...), atOpen: true, is: capture.ErrMalformed, contains: "version"},
		{name: "truncated pcap record header", content: pcapBytes[:firstRec+5], is: capture.ErrTruncated, contains: "after 1 packets", frames: 1},
		{name: "truncated pcap record data", content: pcapBytes[:len(pcapBytes)-1], is: capture.ErrTruncated, frames: len(frames) - 1},
		{name: "truncated gzip pcap", content: gz(pcapBytes)[:len(gz(pcapBytes))-12], is: capture.ErrTruncated},
		{name: "pcap record of 3 GB", content: hugeRec, is: capture.ErrMalformed, contains: "snap length", frames: 1},
		{name: "truncated pcapng section header", content: ngBytes[:20], is: capture.ErrTruncated},
		{name: "truncated pcapng block", content: ngBytes[:len(ngBytes)-10], is: capture.ErrTruncated, frames: len(frames) - 1},
		{name: "truncated pcapng block header", content: ngBytes[:len(ngBytes)-len(frames[len(frames)-1].Data)-32+4], is: capture.ErrTruncated, frames: len(frames) - 1},
		{name: "pcapng oversized packet", content: badNg, is: capture.ErrMalformed, contains: "captured length"},
		{name: "pcapng bad byte order", content: append(bytes.Clone(ngBytes[:8]), append([]byte{1, 2, 3, 4}, ngBytes[12:]...)...), is: capture.ErrMalformed, contains: "byte-order"},
		{name: "pcapng packet before interface", content: append(bytes.Clone(ngBytes[:28]), ngBytes[28+20:]...), is: capture.ErrMalformed, contains: "interface 0"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = filepath.Join(dir, fmt.Sprintf("case%d.cap", i))
				if err := os.WriteFile(path, c.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := capture.OpenFile(path)
			n := 0
			if err == nil {
				if c.atOpen {
					r.Close()
					t.Fatalf("OpenFile succeeded, want an error")
				}
				for {
					_, err = r.Next()
					if err != nil {
						break
					}
					n++
				}
				r.Close()
				if err == io.EOF {
					t.Fatalf("clean EOF after %d frames, want an error", n)
				}
			} else if !c.atOpen {
				t.Fatalf("OpenFile: %v", err)
			}
			msg := err.Error()
			t.Logf("%s", msg)
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", msg, c.is)
			}
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name %s", msg, path)
			}
			if c.contains != "" && !strings.Contains(msg, c.contains) {
				t.Errorf("error %q does not say %q", msg, c.contains)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			if !c.atOpen && c.frames != 0 && n != c.frames {
				t.Errorf("read %d frames before the error, want %d", n, c.frames)
			}
		})
	}
}
