package capture_test

import (
	"bufio"
	"bytes"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/corpus"
	"github.com/icmpids/icmpids/detector"
)

// corpusCounts reads the packet count of every file from the summary table
// of PROVENANCE.md ("| `dir/file` | pkts | ...").
func corpusCounts(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus.Dir(t), "PROVENANCE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([^`]+)` \\| (\\d+) \\|")
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.Atoi(m[2])
			counts[m[1]] = n
		}
	}
	if len(counts) == 0 {
		t.Fatal("no file rows in PROVENANCE.md")
	}
	return counts
}

// corpusSummary is what one corpus file decoded to.
type corpusSummary struct {
	frames      int
	reasons     [detector.NumReasons]int
	echoReq     int
	ipFrames    int // frames whose IP header decoded
	icmp6Type   map[uint8]int
	bcastEchoes []detector.Packet // echo requests to a broadcast/multicast MAC
}

func decodeCorpusFile(t *testing.T, path string) corpusSummary {
	t.Helper()
	r, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec := detector.NewDecoder()
	s := corpusSummary{icmp6Type: map[uint8]int{}}
	var p detector.Packet
	for {
		fr, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d frames: %v", s.frames, err)
		}
		s.frames++
		reason := dec.Decode(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length, &p)
		s.reasons[reason]++
		if p.Src.IsValid() {
			s.ipFrames++
		}
		if p.IsEchoRequest() {
			s.echoReq++
			if p.L2Broadcast {
				s.bcastEchoes = append(s.bcastEchoes, p)
			}
		}
		if p.HasICMP && p.IPv6 {
			s.icmp6Type[p.ICMPType]++
		}
	}
	return s
}

// TestCorpus reads every real capture of the shared corpus through OpenFile
// and the decoder: no read error, the packet count PROVENANCE.md gives, no
// frame of an unsupported link type, and known contents where the notes
// state them.
func TestCorpus(t *testing.T) {
	counts := corpusCounts(t)
	corpusDir := corpus.Dir(t)
	seen := 0
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".pcap") || strings.HasSuffix(path, ".pcapng")) {
			return nil
		}
		rel, _ := filepath.Rel(corpusDir, path)
		rel = filepath.ToSlash(rel)
		seen++
		t.Run(rel, func(t *testing.T) {
			s := decodeCorpusFile(t, path)
			want, ok := counts[rel]
			if !ok {
				t.Errorf("not listed in PROVENANCE.md")
			} else if s.frames != want {
				t.Errorf("read %d frames, PROVENANCE.md says %d", s.frames, want)
			}
			for _, bad := range []detector.Reason{detector.ReasonUnsupportedLink, detector.ReasonMalformedLink} {
				if n := s.reasons[bad]; n != 0 {
					t.Errorf("%d frames decoded as %v", n, bad)
				}
			}
			if s.ipFrames == 0 {
				t.Errorf("no IP header decoded in any frame (reasons %v)", s.reasons)
			}
			switch rel {
			case "misc/broadcast_ping_255.255.255.255_vlan_suricata.pcap":
				if len(s.bcastEchoes) != 3 {
					t.Fatalf("%d L2-broadcast echo requests, want 3", len(s.bcastEchoes))
				}
				for _, p := range s.bcastEchoes {
					if p.Dst != netip.MustParseAddr("255.255.255.255") {
						t.Errorf("echo request to %v, want 255.255.255.255", p.Dst)
					}
				}
			case "flood/ipv6_echo_flood_denial6-5_thc.pcap": // echo requests behind an AH
				if s.echoReq != 35690 {
					t.Errorf("%d echo requests, tshark counts 35690", s.echoReq)
				}
			case "flood/ipv6_mld_report_frag_flood_denial6-6_thc.pcap": // hop-by-hop + fragment header
				if n := s.icmp6Type[131]; n != 39812 {
					t.Errorf("%d MLD reports, tshark counts 39812", n)
				}
			case "smurf/ipv6_rsmurf6_ff02-1_thc.pcap":
				if s.echoReq != 1000 {
					t.Errorf("%d echo requests, tshark counts 1000", s.echoReq)
				}
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(counts) {
		t.Errorf("found %d capture files, PROVENANCE.md lists %d", seen, len(counts))
	}
}

// TestCorpusPcapngMatchesPcapgo checks our pcapng reader against pcapgo's
// on the corpus's pcapng files: same frames, same timestamps.
func TestCorpusPcapngMatchesPcapgo(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(corpus.Dir(t), "*", "*.pcapng"))
	if len(paths) == 0 {
		t.Skip("no pcapng files in the corpus")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.NgReaderOptions{WantMixedLinkType: true})
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, path)
			for i := 0; ; i++ {
				data, ci, err := ref.ReadPacketData()
				if err == io.EOF {
					if i != len(got) {
						t.Errorf("pcapgo reads %d frames, we read %d", i, len(got))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if i >= len(got) {
					t.Fatalf("we read %d frames, pcapgo more", len(got))
				}
				fr := got[i]
				lt, _ := ci.AncillaryData[0].(layers.LinkType)
				if !bytes.Equal(fr.Data, data) || !fr.Timestamp.Equal(ci.Timestamp) || fr.Length != ci.Length || uint8(fr.LinkType) != uint8(lt) {
					t.Errorf("frame %d differs: %v/%d vs pcapgo %v/%d", i, fr.Timestamp, fr.Length, ci.Timestamp, ci.Length)
				}
			}
		})
	}
}
