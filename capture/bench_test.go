package capture_test

import (
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
)

// benchFrames is the number of frames in the allocation and benchmark files.
const benchFrames = 20000

// writeBenchFiles writes the same echo flood as a pcap and a pcapng file.
func writeBenchFiles(tb testing.TB) (pcapPath, ngPath string) {
	tb.Helper()
	fl := synth.Flood{Target: netip.MustParseAddr("10.0.0.5"), Spoofed: true, Start: epoch, Rate: 50000, Count: benchFrames, Seed: 7}
	frames, err := fl.Frames()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	pcapPath, ngPath = filepath.Join(dir, "flood.pcap"), filepath.Join(dir, "flood.pcapng")
	if err := synth.WritePcapFile(pcapPath, frames); err != nil {
		tb.Fatal(err)
	}
	pkts := make([]synth.NgPacket, len(frames))
	for i, f := range frames {
		pkts[i] = synth.NgPacket{Frame: f}
	}
	f, err := os.Create(ngPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := synth.WritePcapng(f, false, []synth.NgInterface{{LinkType: synth.LinkEthernet, TSResol: 9}}, pkts); err != nil {
		tb.Fatal(err)
	}
	return pcapPath, ngPath
}

// TestNextDoesNotAllocate pins the zero-allocation promise of Next in
// steady state, for pcap (pcapgo's ZeroCopyReadPacketData) and pcapng.
func TestNextDoesNotAllocate(t *testing.T) {
	pcapPath, ngPath := writeBenchFiles(t)
	for name, path := range map[string]string{"pcap": pcapPath, "pcapng": ngPath} {
		t.Run(name, func(t *testing.T) {
			r, err := capture.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for range 10 { // first frames size the buffers
				if _, err := r.Next(); err != nil {
					t.Fatal(err)
				}
			}
			var failed error
			allocs := testing.AllocsPerRun(5000, func() {
				if _, err := r.Next(); err != nil && failed == nil {
					failed = err
				}
			})
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs != 0 {
				t.Errorf("Next allocates %.2f times per frame, want 0", allocs)
			}
		})
	}
}

// BenchmarkFileNext reads frames, one per iteration, reopening the file at
// its end (outside the timer). With "+decode" each frame is also decoded.
//
//	go test -run '^$' -bench FileNext -benchmem ./capture/
func BenchmarkFileNext(b *testing.B) {
	pcapPath, ngPath := writeBenchFiles(b)
	for _, bc := range []struct {
		name, path string
		decode     bool
	}{
		{"pcap", pcapPath, false},
		{"pcapng", ngPath, false},
		{"pcap+decode", pcapPath, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r, err := capture.OpenFile(bc.path)
			if err != nil {
				b.Fatal(err)
			}
			dec := detector.NewDecoder()
			var p detector.Packet
			n := 0
			for b.Loop() {
				fr, err := r.Next()
				if err == io.EOF {
					b.StopTimer()
					r.Close()
					if r, err = capture.OpenFile(bc.path); err != nil {
						b.Fatal(err)
					}
					fr, err = r.Next() // sizes the buffer: not steady state
					b.StartTimer()
				}
				if err != nil {
					b.Fatal(err)
				}
				if bc.decode {
					dec.Decode(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length, &p)
				}
				n++
			}
			r.Close()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
