package main

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

func gen(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(append(args, "-o", "-"), &out, &errb); err != nil {
		t.Fatalf("icmpids-gen %v: %v (%s)", args, err, errb.String())
	}
	return out.Bytes()
}

// TestDemoIsTheBundledCapture: the golden replay tests read
// cmd/icmpids/testdata/demo.pcap; the generator must still write it byte for byte.
func TestDemoIsTheBundledCapture(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "icmpids", "testdata", "demo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	if got := gen(t, "-scenario", "demo"); !bytes.Equal(got, want) {
		t.Fatalf("demo scenario: %d bytes differ from testdata/demo.pcap (%d bytes)", len(got), len(want))
	}
}

// TestStreamedFloodMatchesSynth: the streamed, template-patched flood is
// the flood synth.Flood builds packet by packet.
func TestStreamedFloodMatchesSynth(t *testing.T) {
	for _, target := range []string{"10.0.0.5", "2001:db8::5"} {
		frames, err := synth.Flood{Target: netip.MustParseAddr(target), Spoofed: true, Seed: 9, Start: epoch, Rate: 5000, Count: 500}.Frames()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := synth.WritePcap(&want, frames); err != nil {
			t.Fatal(err)
		}
		got := gen(t, "-scenario", "spoofed-flood", "-target", target, "-seed", "9", "-rate", "5000", "-count", "500")
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%s: streamed flood differs from synth.Flood", target)
		}
	}
}

func TestScenariosWriteCount(t *testing.T) {
	for _, sc := range []string{"mix", "frag-flood", "flood", "spoofed-flood", "carpet", "spoofed-carpet"} {
		b := gen(t, "-scenario", sc, "-count", "3000", "-rate", "100000")
		n, size := countPackets(t, b)
		if n != 3000 {
			t.Errorf("%s: %d packets, want 3000", sc, n)
		}
		if sc == "mix" && (size/n < 500 || size/n > 700) {
			t.Errorf("mix: average frame %d bytes, want about 600", size/n)
		}
	}
	a, b := gen(t, "-scenario", "mix", "-count", "2000"), gen(t, "-scenario", "mix", "-count", "2000")
	if !bytes.Equal(a, b) {
		t.Error("mix is not deterministic for one seed")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-scenario", "nope"}, {"-icmp", "2"}, {"-target", "x"}, {"-rate", "0"},
		{"-floods", "0.5"}, {"-payload", "-1"}, {"-scenario", "ipip4", "-target", "2001:db8::1"}, {"-scenario", "ptb-spray", "-prefix", "2001:db8::/64"}} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// countPackets walks a little-endian pcap: packets and captured bytes.
func countPackets(t *testing.T, b []byte) (n, size int) {
	t.Helper()
	off := 24
	for off+16 <= len(b) {
		l := int(b[off+8]) | int(b[off+9])<<8 | int(b[off+10])<<16 | int(b[off+11])<<24
		off += 16 + l
		size += l
		n++
	}
	if off != len(b) {
		t.Fatalf("pcap ends at %d, %d bytes", off, len(b))
	}
	return n, size
}

// frames splits a little-endian pcap into its frames.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for off := 24; off+16 <= len(b); {
		l := int(b[off+8]) | int(b[off+9])<<8 | int(b[off+10])<<16 | int(b[off+11])<<24
		out = append(out, b[off+16:off+16+l])
		off += 16 + l
	}
	return out
}

// TestCraftedScenarios: every crafted flood of the worst-input suite writes
// -count frames, the same for one seed, every frame decodes (IP and an ICMP
// header, or an IPv4 fragment for frag-trains' second halves), and each
// holds what its row of the suite promises.
func TestCraftedScenarios(t *testing.T) {
	type decoded struct {
		p    detector.Packet
		data []byte // the ICMP message, copied
	}
	check := map[string]func(t *testing.T, ps []decoded){
		synth.CraftEchoZero: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if len(d.data) != 8+56 || !bytes.Equal(d.data[8:], make([]byte, 56)) {
					t.Fatalf("echo data %x, want 56 zero bytes", d.data[8:])
				}
			}
		},
		synth.CraftEchoZeroTail: func(t *testing.T, ps []decoded) {
			want := append(make([]byte, 1399), 1)
			for _, d := range ps {
				if !bytes.Equal(d.data[8:], want) {
					t.Fatalf("echo data of %d bytes, want 1,399 zero bytes then 0x01", len(d.data)-8)
				}
			}
		},
		synth.CraftEchoRandomPairs: func(t *testing.T, ps []decoded) {
			pairs := map[[2]netip.Addr]bool{}
			for _, d := range ps {
				pairs[[2]netip.Addr{d.p.Src, d.p.Dst}] = true
				if !netip.MustParsePrefix("10.0.0.0/8").Contains(d.p.Dst) || len(d.data) != 8+1400 {
					t.Fatalf("echo to %s with %d data bytes, want 1,400 to 10.0.0.0/8", d.p.Dst, len(d.data)-8)
				}
			}
			if len(pairs) != len(ps) {
				t.Fatalf("%d pairs in %d packets, want a new pair per packet", len(pairs), len(ps))
			}
		},
		synth.CraftEchoSameData: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if !bytes.Equal(d.data[8:], ps[0].data[8:]) || bytes.Count(d.data[8:], []byte{0}) > 8 {
					t.Fatalf("echo data %x, want the first packet's random-looking bytes %x", d.data[8:], ps[0].data[8:])
				}
			}
		},
		synth.CraftEchoRandomData: func(t *testing.T, ps []decoded) {
			srcs := map[netip.Addr]bool{}
			for _, d := range ps {
				srcs[d.p.Src] = true
				if len(d.data) != 8+64 {
					t.Fatalf("%d data bytes, want 64", len(d.data)-8)
				}
			}
			if len(srcs) != 1000 || bytes.Equal(ps[0].data[8:], ps[1].data[8:]) {
				t.Fatalf("%d sources (want 1,000), or the data does not change", len(srcs))
			}
		},
		synth.CraftUnreachTCP: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if d.p.ICMPType != 3 || d.p.ICMPCode != 3 || d.data[8+9] != 6 || d.data[8+8] != 64 {
					t.Fatalf("type %d code %d quoting protocol %d TTL %d, want a port unreachable quoting TCP, TTL 64",
						d.p.ICMPType, d.p.ICMPCode, d.data[8+9], d.data[8+8])
				}
			}
		},
		synth.CraftRAOptions: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if d.p.ICMPType != 134 || len(d.data) != 16+32+180*8 {
					t.Fatalf("type %d, %d bytes, want an RA with a prefix and 180 8-byte options", d.p.ICMPType, len(d.data))
				}
			}
		},
		synth.CraftRAPrefixes: func(t *testing.T, ps []decoded) {
			srcs := map[netip.Addr]bool{}
			for _, d := range ps {
				srcs[d.p.Src] = true
				if d.p.ICMPType != 134 || len(d.data) != 16+32*32 || d.data[16] != 3 {
					t.Fatalf("type %d, %d bytes, option %d, want an RA with 32 prefix options", d.p.ICMPType, len(d.data), d.data[16])
				}
			}
			if len(srcs) != len(ps) {
				t.Fatalf("%d routers for %d RAs, want a new one each", len(srcs), len(ps))
			}
		},
		synth.CraftPTBSpray: func(t *testing.T, ps []decoded) {
			dsts := map[netip.Addr]bool{}
			for _, d := range ps {
				dsts[d.p.Dst] = true
				if d.p.ICMPType != 3 || d.p.ICMPCode != 4 || d.data[7] != 68 || d.p.Src != ps[0].p.Src {
					t.Fatalf("type %d code %d MTU %d from %s, want fragmentation needed, MTU 68, from one forger", d.p.ICMPType, d.p.ICMPCode, d.data[7], d.p.Src)
				}
			}
			if len(dsts) < len(ps)*9/10 {
				t.Fatalf("%d receivers for %d packets, want a new one per packet", len(dsts), len(ps))
			}
		},
		synth.CraftIPIP4: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if d.p.Tunnel.Depth != 4 {
					t.Fatalf("tunnel depth %d, want 4", d.p.Tunnel.Depth)
				}
			}
		},
		synth.CraftDeepStack: func(t *testing.T, ps []decoded) {
			for _, d := range ps {
				if d.p.NVLAN != 8 || d.p.Tunnel.Depth != 3 {
					t.Fatalf("%d VLAN tags, tunnel depth %d; want 8 and 3", d.p.NVLAN, d.p.Tunnel.Depth)
				}
			}
		},
	}
	for _, kind := range synth.CraftedKinds {
		t.Run(kind, func(t *testing.T) {
			b := gen(t, "-scenario", kind, "-count", "2000", "-rate", "100000")
			if !bytes.Equal(b, gen(t, "-scenario", kind, "-count", "2000", "-rate", "100000")) {
				t.Fatal("not deterministic for one seed")
			}
			fs := frames(t, b)
			if n, _ := countPackets(t, b); n != 2000 || len(fs) != 2000 {
				t.Fatalf("%d packets, want 2000", n)
			}
			dec := detector.NewDecoder()
			var ps []decoded
			for i, f := range fs {
				var p detector.Packet
				if r := dec.Decode(detector.LinkEthernet, f, epoch, len(f), &p); r != detector.ReasonOK {
					t.Fatalf("frame %d: %v", i, r)
				}
				if !p.HasICMP {
					if kind == synth.CraftFragTrains && p.Fragment && p.FragOffset > 0 {
						continue
					}
					t.Fatalf("frame %d: no ICMP header", i)
				}
				ps = append(ps, decoded{p: p, data: bytes.Clone(p.ICMPData)})
			}
			if c := check[kind]; c != nil {
				c(t, ps)
			}
		})
	}
}

// TestSpoofedCarpetSources: -sources N spreads a spoofed carpet over N
// sources, each hitting many hosts of the prefix (issue 26's carpet).
func TestSpoofedCarpetSources(t *testing.T) {
	b := gen(t, "-scenario", "spoofed-carpet", "-sources", "300", "-count", "30000")
	hosts := map[netip.Addr]map[netip.Addr]bool{}
	for _, f := range frames(t, b) {
		src, dst := synth.Frame{Data: f}.Src(), synth.Frame{Data: f}.Target()
		if hosts[src] == nil {
			hosts[src] = map[netip.Addr]bool{}
		}
		hosts[src][dst] = true
	}
	if len(hosts) != 300 {
		t.Fatalf("%d sources, want 300", len(hosts))
	}
	for src, h := range hosts {
		if len(h) < 50 {
			t.Fatalf("%s hits %d hosts, want many", src, len(h))
		}
	}
}

// TestMixFloods: -floods S puts about S of the mix's packets in spoofed
// echo-flood episodes carrying one set of 56 non-ping bytes each; -floods 0
// is the benign mix.
func TestMixFloods(t *testing.T) {
	b := gen(t, "-scenario", "mix", "-floods", "0.1", "-count", "400000", "-seed", "3")
	flood := 0
	for _, f := range frames(t, b) {
		// A flood packet: untagged IPv4 echo request with 56 data bytes, id 0x4242.
		if len(f) == 14+20+8+56 && f[12] == 0x08 && f[14+9] == 1 && f[34] == 8 && f[38] == 0x42 && f[39] == 0x42 {
			flood++
		}
	}
	if share := float64(flood) / 400000; share < 0.05 || share > 0.15 {
		t.Fatalf("%d flood packets (%.3f of the mix), want about 0.1", flood, share)
	}
	if !bytes.Equal(gen(t, "-scenario", "mix", "-count", "2000"), gen(t, "-scenario", "mix", "-floods", "0", "-count", "2000")) {
		t.Fatal("-floods 0 changed the benign mix")
	}
}
