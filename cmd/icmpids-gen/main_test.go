package main

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/icmpids/icmpids/capture/synth"
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
	for _, args := range [][]string{{"-scenario", "nope"}, {"-icmp", "2"}, {"-target", "x"}, {"-rate", "0"}} {
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
