// Command icmpids-gen writes synthetic capture files for the demo, the
// tests and the benchmarks. Output is deterministic for a given seed.
//
//	icmpids-gen -scenario demo -o demo.pcap
//	icmpids-gen -scenario spoofed-flood -count 1000000 -rate 50000 -o flood.pcap
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "icmpids-gen: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("icmpids-gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "demo", "demo | flood | spoofed-flood")
	out := fs.String("o", "-", "output pcap file (- for stdout)")
	count := fs.Int("count", 10000, "packets in the flood (flood scenarios)")
	rate := fs.Float64("rate", 5000, "flood rate in packets/s")
	seed := fs.Uint64("seed", 1, "seed for spoofed sources")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	victim := netip.MustParseAddr("10.0.0.5")
	var frames []synth.Frame
	var err error
	switch *scenario {
	case "demo":
		frames, err = demo(start)
	case "flood":
		frames, err = synth.Flood{Target: victim, Source: netip.MustParseAddr("198.51.100.7"), Start: start, Rate: *rate, Count: *count}.Frames()
	case "spoofed-flood":
		frames, err = synth.Flood{Target: victim, Spoofed: true, Seed: *seed, Start: start, Rate: *rate, Count: *count}.Frames()
	default:
		return fmt.Errorf("-scenario: unknown scenario %q (demo, flood, spoofed-flood)", *scenario)
	}
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("create %s: %w", *out, err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	if err := synth.WritePcap(bw, frames); err != nil {
		return err
	}
	return bw.Flush()
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
