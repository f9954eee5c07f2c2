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
//	spoofed-carpet the same, every packet from a new spoofed source (or,
//	               with -sources N, from N spoofed sources that each hit
//	               many hosts of the prefix)
//
// The crafted floods of the worst-input suite (bench/worst.sh), each the
// worst input for one part of the detector; see synth.Crafted for what
// each holds and what -payload, -options, -sources and -prefix mean to it:
//
//	echo-zero          echo, -payload zero bytes (56), spoofed sources
//	echo-zero-tail     echo, 1,399 zero bytes then 0x01
//	echo-random-pairs  echo, 1,400 random bytes, new (source, destination) per packet
//	echo-same-data     spoofed flood, every packet the same 56 random-looking bytes
//	echo-random-data   flood from 1,000 spoofed sources, new random 64 bytes per packet
//	unreach-tcp        port unreachables quoting TCP (TTL 64)
//	error6-ext         ICMPv6 errors quoting IPv6 behind 8 extension headers
//	ptb-spray          forged fragmentation-needed (MTU 68), each to a new receiver
//	redirect           redirects, a new gateway and destination per packet
//	ra-options         RAs: a prefix option then 180 unknown 8-byte options
//	nd-options         NS and NA with 180 unknown options
//	ipip4              echo inside IP-in-IP x4
//	deep-stack         echo behind 8 VLAN tags, GRE, VXLAN, IP-in-IP
//	frag-trains        every echo a complete train of two fragments
//	ra-prefixes        RAs: 32 prefix options (new /64s), a new router each
//
// The mix with -floods S carries flood episodes: S of its packets belong to
// spoofed echo floods of an inside host whose packets all carry the same
// 56 random-looking (non-ping) bytes.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
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
	scenario := fs.String("scenario", "demo", strings.Join(scenarios(), " | "))
	prefixFlag := fs.String("prefix", "10.20.0.0/24", "the prefix a carpet spreads over (carpet scenarios)")
	out := fs.String("o", "-", "output pcap file (- for stdout)")
	count := fs.Int("count", 10000, "packets to write (all scenarios but demo)")
	rate := fs.Float64("rate", 5000, "packets/s of packet time")
	seed := fs.Uint64("seed", 1, "seed for addresses, sizes and the traffic mix")
	target := fs.String("target", "10.0.0.5", "victim address (flood scenarios)")
	payload := fs.Int("payload", 0, "ICMP echo data bytes (flood scenarios; 0: the scenario's default, 56 but for the crafted floods that say otherwise)")
	options := fs.Int("options", 0, "crafted floods: ND options or IPv6 extension headers per packet (0: the scenario's default)")
	sources := fs.Int("sources", 0, "spoofed-carpet and crafted floods: spoofed sources, round robin (0: a new one per packet)")
	var mix mixConfig
	fs.Float64Var(&mix.ICMP, "icmp", 0.30, "mix: share of ICMP/ICMPv6 packets")
	fs.Float64Var(&mix.IPv6, "ipv6", 0.25, "mix: share of IPv6 packets")
	fs.Float64Var(&mix.VLAN, "vlan", 0.20, "mix: share of 802.1Q-tagged frames")
	fs.Float64Var(&mix.Frag, "frag", 0.01, "mix: share of UDP datagrams sent as fragment trains")
	fs.IntVar(&mix.Hosts, "hosts", 1000, "mix: inside hosts")
	fs.Float64Var(&mix.Floods, "floods", 0, "mix: share of packets in spoofed echo-flood episodes with non-ping data (below 0.5)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *count < 0 || !(*rate > 0) {
		return fmt.Errorf("-count must not be negative and -rate must be positive")
	}
	if *payload < 0 || *payload > 65000 || *options < 0 || *options > 10000 || *sources < 0 {
		return fmt.Errorf("-payload, -options and -sources must not be negative (-payload at most 65000, -options 10000)")
	}
	echoLen := *payload
	if echoLen == 0 {
		echoLen = 56
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
			return floodStream(w, victim, netip.MustParseAddr("198.51.100.7"), false, *seed, *rate, *count, echoLen)
		}
	case "spoofed-flood":
		gen = func(w *writer) error {
			return floodStream(w, victim, netip.Addr{}, true, *seed, *rate, *count, echoLen)
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
		gen = func(w *writer) error {
			return carpetStream(w, prefix, spoofed, *sources, *seed, *rate, *count, echoLen)
		}
	default:
		if !slices.Contains(synth.CraftedKinds, *scenario) {
			return fmt.Errorf("-scenario: unknown scenario %q (%s)", *scenario, strings.Join(scenarios(), ", "))
		}
		c := synth.Crafted{Kind: *scenario, Payload: *payload, Options: *options, Sources: *sources, Seed: *seed}
		if isFlag(fs, "target") || *scenario == synth.CraftRedirect {
			c.Target = victim
		}
		if isFlag(fs, "prefix") {
			p, err := netip.ParsePrefix(*prefixFlag)
			if err != nil {
				return fmt.Errorf("-prefix: %v", err)
			}
			c.Prefix = p
		}
		next, err := c.Gen()
		if err != nil {
			return fmt.Errorf("-scenario %s: %w", *scenario, err)
		}
		gen = func(w *writer) error { return craftedStream(w, next, *rate, *count) }
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

// scenarios lists every scenario -scenario takes.
func scenarios() []string {
	return append([]string{"demo", "flood", "spoofed-flood", "mix", "frag-flood", "carpet", "spoofed-carpet"}, synth.CraftedKinds...)
}

// isFlag reports whether the flag name was given on the command line.
func isFlag(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// craftedStream writes count frames of a crafted flood at rate.
func craftedStream(w *writer, next func(int) ([]byte, error), rate float64, count int) error {
	step := time.Duration(float64(time.Second) / rate)
	for i := 0; i < count; i++ {
		f, err := next(i)
		if err != nil {
			return err
		}
		if err := w.write(epoch.Add(time.Duration(i)*step), f); err != nil {
			return err
		}
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
