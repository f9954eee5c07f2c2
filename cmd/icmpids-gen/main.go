// Command icmpids-gen writes synthetic capture files for the demo, the
// tests and the benchmarks. Output is deterministic for a given seed, and
// every scenario but demo streams its frames to the file: ten million
// packets cost no more memory than ten.
//
//	icmpids-gen -scenario demo -o demo.pcap
//	icmpids-gen -scenario spoofed-flood -count 10000000 -rate 1000000 -o flood.pcap
//	icmpids-gen -scenario mix -count 2000000 -rate 200000 -o mix.pcap
//	icmpids-gen -scenario frag-flood -count 1000000 -rate 200000 -o frags.pcap
//	icmpids-gen -scenario spoofed-carpet -prefix 10.20.0.0/16 -count 5000000 -rate 500000 -o carpet.pcap
//
// Scenarios:
//
//	demo           the bundled demo capture (cmd/icmpids/testdata/demo.pcap)
//	flood          an echo flood from one source to -target
//	spoofed-flood  an echo flood to -target, every packet from a new spoofed source
//	mix            benign gateway traffic: see the mix flags (-icmp, -ipv6, -vlan, -frag)
//	frag-flood     first fragments of never-completed trains to -target,
//	               every one a new train (spoofed source, new IP id)
//	carpet         an echo flood spread over every address of -prefix
//	               (carpet bombing), from one source
//	spoofed-carpet the same, every packet from a new spoofed source
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/icmpids/icmpids/capture/synth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "icmpids-gen: %v\n", err)
		os.Exit(2)
	}
}

// epoch is the packet time every scenario starts at.
var epoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// writer streams frames to a pcap file (Ethernet, nanosecond timestamps,
// snap length 65536: the format synth.WritePcap writes).
type writer struct {
	pw *pcapgo.Writer
	n  int
}

func (w *writer) write(t time.Time, data []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(data), Length: len(data)}
	if err := w.pw.WritePacket(ci, data); err != nil {
		return fmt.Errorf("write pcap packet %d: %w", w.n, err)
	}
	w.n++
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("icmpids-gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "demo", "demo | flood | spoofed-flood | mix | frag-flood | carpet | spoofed-carpet")
	prefixFlag := fs.String("prefix", "10.20.0.0/24", "the prefix a carpet spreads over (carpet scenarios)")
	out := fs.String("o", "-", "output pcap file (- for stdout)")
	count := fs.Int("count", 10000, "packets to write (all scenarios but demo)")
	rate := fs.Float64("rate", 5000, "packets/s of packet time")
	seed := fs.Uint64("seed", 1, "seed for addresses, sizes and the traffic mix")
	target := fs.String("target", "10.0.0.5", "victim address (flood scenarios)")
	payload := fs.Int("payload", 56, "ICMP echo data bytes (flood scenarios)")
	var mix mixConfig
	fs.Float64Var(&mix.ICMP, "icmp", 0.30, "mix: share of ICMP/ICMPv6 packets")
	fs.Float64Var(&mix.IPv6, "ipv6", 0.25, "mix: share of IPv6 packets")
	fs.Float64Var(&mix.VLAN, "vlan", 0.20, "mix: share of 802.1Q-tagged frames")
	fs.Float64Var(&mix.Frag, "frag", 0.01, "mix: share of UDP datagrams sent as fragment trains")
	fs.IntVar(&mix.Hosts, "hosts", 1000, "mix: inside hosts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *count < 0 || !(*rate > 0) {
		return fmt.Errorf("-count must not be negative and -rate must be positive")
	}
	victim, err := netip.ParseAddr(*target)
	if err != nil {
		return fmt.Errorf("-target: %v", err)
	}
	if err := mix.validate(); err != nil {
		return err
	}
	var gen func(w *writer) error
	switch *scenario {
	case "demo":
		gen = func(w *writer) error {
			frames, err := demo(epoch)
			if err != nil {
				return err
			}
			for _, f := range frames {
				if err := w.write(f.Time, f.Data); err != nil {
					return err
				}
			}
			return nil
		}
	case "flood":
		gen = func(w *writer) error {
			return floodStream(w, victim, netip.MustParseAddr("198.51.100.7"), false, *seed, *rate, *count, *payload)
		}
	case "spoofed-flood":
		gen = func(w *writer) error {
			return floodStream(w, victim, netip.Addr{}, true, *seed, *rate, *count, *payload)
		}
	case "mix":
		gen = func(w *writer) error { return mixStream(w, mix, *seed, *rate, *count) }
	case "frag-flood":
		gen = func(w *writer) error { return fragFloodStream(w, victim, *seed, *rate, *count) }
	case "carpet", "spoofed-carpet":
		prefix, err := netip.ParsePrefix(*prefixFlag)
		if err != nil {
			return fmt.Errorf("-prefix: %v", err)
		}
		spoofed := *scenario == "spoofed-carpet"
		gen = func(w *writer) error { return carpetStream(w, prefix, spoofed, *seed, *rate, *count, *payload) }
	default:
		return fmt.Errorf("-scenario: unknown scenario %q (demo, flood, spoofed-flood, mix, frag-flood, carpet, spoofed-carpet)", *scenario)
	}
	dst := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("create %s: %w", *out, err)
		}
		defer f.Close()
		dst = f
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	if err := gen(&writer{pw: pw}); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f, ok := dst.(*os.File); ok && *out != "-" {
		return f.Close()
	}
	return nil
}

// demo is the bundled demo capture: a minute of normal pings (IPv4 and
// IPv6), then a 1.6-second, 2,500 pps echo flood from spoofed sources against 10.0.0.5
// and a 1-second, 2,000 pps IPv6 echo flood from one source against 2001:db8::80.
func demo(start time.Time) ([]synth.Frame, error) {
	pings4, err := synth.Pings(netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.1"), start, time.Second, 60)
	if err != nil {
		return nil, err
	}
	pings6, err := synth.Pings(netip.MustParseAddr("2001:db8::20"), netip.MustParseAddr("2001:db8::1"), start.Add(500*time.Millisecond), time.Second, 60)
	if err != nil {
		return nil, err
	}
	spoofed, err := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Seed: 2026,
		Start: start.Add(20 * time.Second), Rate: 2500, Count: 4000}.Frames()
	if err != nil {
		return nil, err
	}
	v6, err := synth.Flood{Target: netip.MustParseAddr("2001:db8::80"), Source: netip.MustParseAddr("2001:db8:bad::7"),
		Start: start.Add(40 * time.Second), Rate: 2000, Count: 2000}.Frames()
	if err != nil {
		return nil, err
	}
	return synth.Merge(pings4, pings6, spoofed, v6), nil
}
