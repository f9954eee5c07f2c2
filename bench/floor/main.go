// Command floor is the yardstick bench/compare.sh measures icmpids replay
// against: it reads pcap files with pcapgo (ZeroCopyReadPacketData through
// a 1 MiB buffer, as capture.FileReader does) and decodes every frame with
// one preallocated gopacket DecodingLayerParser over the layers icmpids
// decodes (Ethernet, 802.1Q, IPv4, IPv6, ICMPv4, ICMPv6, ICMPv6 echo), and
// does nothing else: no detection, no output. Whole-process packets/s of
// this program is the "floor": the speed of decoding with gopacket alone.
//
//	go build -o floor ./bench/floor && ./floor mix.pcap
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: floor FILE.pcap...")
		os.Exit(2)
	}
	var (
		eth   layers.Ethernet
		dot1q layers.Dot1Q
		ip4   layers.IPv4
		ip6   layers.IPv6
		icmp4 layers.ICMPv4
		icmp6 layers.ICMPv6
		echo6 layers.ICMPv6Echo
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &icmp4, &icmp6, &echo6)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 16)
	var frames, ip, icmp, errs uint64
	start := time.Now()
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		for {
			data, _, err := r.ZeroCopyReadPacketData()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
					os.Exit(1)
				}
				break
			}
			frames++
			if err := parser.DecodeLayers(data, &decoded); err != nil {
				errs++
			}
			for _, t := range decoded {
				switch t {
				case layers.LayerTypeIPv4, layers.LayerTypeIPv6:
					ip++
				case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6:
					icmp++
				}
			}
		}
		f.Close()
	}
	el := time.Since(start)
	fmt.Printf("frames=%d ip=%d icmp=%d errors=%d elapsed=%v pps=%.0f\n", frames, ip, icmp, errs, el.Round(time.Millisecond), float64(frames)/el.Seconds())
}
