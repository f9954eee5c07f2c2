package capture_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/capture/synth"
)

// setFrames returns n echo requests at start, start+step, ... with the
// sequence numbers seq0, seq0+1, ... (so a test can tell them apart).
func setFrames(t *testing.T, start time.Time, step time.Duration, n int, seq0 uint16) []synth.Frame {
	t.Helper()
	var out []synth.Frame
	for i := range n {
		data, err := synth.EchoFrame(synth.Echo{Src: src4, Dst: dst4, ID: 1, Seq: seq0 + uint16(i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, synth.Frame{Time: start.Add(time.Duration(i) * step), Data: data})
	}
	return out
}

func writeSetFile(t *testing.T, path string, frames []synth.Frame, gz bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := io.Writer(&buf)
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	if err := synth.WritePcap(w, frames); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// seqOf is the echo sequence number of an Ethernet/IPv4/ICMP frame.
func seqOf(fr capture.Frame) uint16 { return uint16(fr.Data[14+20+6])<<8 | uint16(fr.Data[14+20+7]) }

// drain reads the set to its end and returns the frames' sequence numbers,
// times and the errors met on the way.
func drain(t *testing.T, s *capture.Set) (seqs []uint16, times []time.Time, errs []error) {
	t.Helper()
	for range 1 << 20 {
		fr, err := s.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seqs = append(seqs, seqOf(fr))
		times = append(times, fr.Timestamp)
	}
	t.Fatal("set never ended")
	return
}

// TestSetMergesByPacketTime: files whose packets interleave in time come
// out as one stream in time order; equal times keep the files' order.
func TestSetMergesByPacketTime(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.pcap")
	b := filepath.Join(dir, "b.pcap.gz")
	c := filepath.Join(dir, "c.pcap")
	writeSetFile(t, a, setFrames(t, epoch, 2*time.Millisecond, 50, 0), false)                        // 0, 2, 4, ... ms
	writeSetFile(t, b, setFrames(t, epoch.Add(time.Millisecond), 2*time.Millisecond, 50, 100), true) // 1, 3, 5, ... ms
	writeSetFile(t, c, setFrames(t, epoch, 10*time.Millisecond, 10, 200), false)                     // 0, 10, ... ms: ties with a
	s, err := capture.OpenSet([]string{c, b, a})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seqs, times, errs := drain(t, s)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(seqs) != 110 {
		t.Fatalf("%d frames, want 110", len(seqs))
	}
	if !slices.IsSortedFunc(times, func(x, y time.Time) int { return x.Compare(y) }) {
		t.Fatal("frames are not in packet-time order")
	}
	// At 0 ms: c (listed first) before a; at 1 ms: b.
	if want := []uint16{200, 0, 100, 1, 101, 2}; !reflect.DeepEqual(seqs[:6], want) {
		t.Fatalf("first frames %v, want %v", seqs[:6], want)
	}
	p := s.Progress()
	if p.Files != 3 || p.FilesDone != 3 || p.Frames != 110 || p.Bytes != p.Total || p.Total <= 0 {
		t.Fatalf("progress at the end: %+v", p)
	}
}

// TestSetRotatedOpensLazily: a rotated set (time-disjoint files) is read
// one file at a time, in natural name order where times tie, and every
// file is closed at its end.
func TestSetRotatedOpensLazily(t *testing.T) {
	dir := t.TempDir()
	var want []uint16
	for i := range 12 {
		name := "cap.pcap"
		if i > 0 {
			name += string(rune('0' + i%10))
			if i >= 10 {
				name = "cap.pcap1" + string(rune('0'+i%10))
			}
		}
		writeSetFile(t, filepath.Join(dir, "set", name), setFrames(t, epoch.Add(time.Duration(i)*time.Second), time.Millisecond, 5, uint16(i*10)), false)
		for j := range 5 {
			want = append(want, uint16(i*10+j))
		}
	}
	s, err := capture.OpenSet([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []uint16
	for {
		fr, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, seqOf(fr))
		open := 0
		for _, f := range s.Files() {
			if f.State == capture.FileOpen {
				open++
			}
		}
		if open > 1 {
			t.Fatalf("%d files open at once in a time-disjoint set", open)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v\nwant %v", got, want)
	}
	files := s.Files()
	if files[10].Path != filepath.Join(dir, "set", "cap.pcap10") || files[2].Path != filepath.Join(dir, "set", "cap.pcap2") {
		t.Errorf("directory order is not natural: %v, %v", files[2].Path, files[10].Path)
	}
	for _, f := range files {
		if f.State != capture.FileDone || f.Frames != 5 || f.Read != f.Size {
			t.Errorf("%s: %+v", f.Path, f)
		}
	}
}

// TestSetBadFiles: damaged files are reported once and the rest goes on;
// files in a directory that are no captures are skipped; explicit bad
// files and empty directories fail OpenSet.
func TestSetBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "in", "good.pcap")
	writeSetFile(t, good, setFrames(t, epoch, time.Millisecond, 20, 0), false)
	cut := filepath.Join(dir, "in", "cut.pcap")
	writeSetFile(t, cut, setFrames(t, epoch.Add(5*time.Millisecond), time.Millisecond, 20, 100), false)
	data, _ := os.ReadFile(cut)
	os.WriteFile(cut, data[:len(data)/2], 0o644)
	badHeader := filepath.Join(dir, "in", "header.pcap")
	os.WriteFile(badHeader, data[:10], 0o644) // pcap magic, header cut
	notes := filepath.Join(dir, "in", "notes.txt")
	os.WriteFile(notes, []byte("not a capture"), 0o644)
	os.WriteFile(filepath.Join(dir, "in", ".hidden"), []byte("ignored"), 0o644)

	s, err := capture.OpenSet([]string{filepath.Join(dir, "in")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sk := s.Skipped(); len(sk) != 1 || !strings.Contains(sk[0].Error(), "notes.txt") || !errors.Is(sk[0], capture.ErrNotCapture) {
		t.Fatalf("skipped: %v", sk)
	}
	seqs, _, errs := drain(t, s)
	if len(errs) != 2 {
		t.Fatalf("errors %v, want the cut file and the bad header, once each", errs)
	}
	var names []string
	for _, e := range errs {
		if !errors.Is(e, capture.ErrTruncated) {
			t.Errorf("error %v does not wrap ErrTruncated", e)
		}
		names = append(names, e.Error())
	}
	joined := strings.Join(names, "\n")
	if !strings.Contains(joined, "cut.pcap") || !strings.Contains(joined, "header.pcap") {
		t.Errorf("errors do not name the files: %s", joined)
	}
	if n := len(seqs); n <= 20 || n >= 40 {
		t.Errorf("%d frames: want the good file's 20 and the cut file's first few", n)
	}
	states := map[string]capture.FileState{}
	for _, f := range s.Files() {
		states[filepath.Base(f.Path)] = f.State
	}
	want := map[string]capture.FileState{"good.pcap": capture.FileDone, "cut.pcap": capture.FileDamaged,
		"header.pcap": capture.FileDamaged, "notes.txt": capture.FileSkipped}
	if !reflect.DeepEqual(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}

	for _, tc := range []struct {
		name  string
		paths []string
		want  string
	}{
		{"explicit non-capture", []string{good, notes}, "notes.txt"},
		{"explicit bad header", []string{badHeader}, "header.pcap"},
		{"missing", []string{filepath.Join(dir, "nope.pcap")}, "nope.pcap"},
		{"no captures in directory", []string{good, filepath.Join(dir, "empty")}, "empty"},
		{"stdin twice", []string{"-", "-"}, "standard input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
			os.WriteFile(filepath.Join(dir, "empty", "README"), []byte("nothing here"), 0o644)
			s, err := capture.OpenSet(tc.paths)
			if err == nil {
				s.Close()
				t.Fatal("OpenSet succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestSetDuplicates: a file named twice (or named and found in its
// directory) is read once.
func TestSetDuplicates(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.pcap")
	writeSetFile(t, p, setFrames(t, epoch, time.Millisecond, 3, 0), false)
	s, err := capture.OpenSet([]string{p, dir, p})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seqs, _, _ := drain(t, s); len(seqs) != 3 {
		t.Fatalf("%d frames, want 3", len(seqs))
	}
}

func TestFilter(t *testing.T) {
	v4, err := synth.EchoFrame(synth.Echo{Src: src4, Dst: dst4})
	if err != nil {
		t.Fatal(err)
	}
	v6, err := synth.EchoFrame(synth.Echo{Src: src6, Dst: dst6})
	if err != nil {
		t.Fatal(err)
	}
	f, err := capture.NewFilter("icmp6 or host 10.0.0.99")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fr   capture.Frame
		want bool
	}{
		{"ethernet v4", capture.Frame{Data: v4, Length: len(v4), LinkType: 1}, false},
		{"ethernet v6", capture.Frame{Data: v6, Length: len(v6), LinkType: 1}, true},
		{"raw v6 (LINKTYPE_RAW)", capture.Frame{Data: v6[14:], Length: len(v6) - 14, LinkType: 101}, true},
		{"raw v4 (LINKTYPE_IPV4)", capture.Frame{Data: v4[14:], Length: len(v4) - 14, LinkType: 228}, false},
		{"empty frame", capture.Frame{LinkType: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.Match(&tc.fr)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
	// A link type the expression cannot be compiled for: one error, then
	// no match.
	fe, _ := capture.NewFilter("ether host 02:00:00:00:00:01")
	raw := capture.Frame{Data: v4[14:], Length: len(v4) - 14, LinkType: 101}
	if _, err := fe.Match(&raw); err == nil || !errors.Is(err, capture.ErrBadFilter) {
		t.Fatalf("ether filter on raw IP: %v, want ErrBadFilter", err)
	}
	if ok, err := fe.Match(&raw); ok || err != nil {
		t.Fatalf("second frame: %v %v, want no match and no error", ok, err)
	}
	if _, err := capture.NewFilter("icmp and and"); err == nil || !errors.Is(err, capture.ErrBadFilter) || !strings.Contains(err.Error(), "icmp and and") {
		t.Fatalf("bad expression: %v", err)
	}
	_ = netip.Addr{}
}

// TestSetNextDoesNotAllocate: merging costs no allocation per frame.
func TestSetNextDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	writeSetFile(t, filepath.Join(dir, "a.pcap"), setFrames(t, epoch, 2*time.Millisecond, 3000, 0), false)
	writeSetFile(t, filepath.Join(dir, "b.pcap"), setFrames(t, epoch.Add(time.Millisecond), 2*time.Millisecond, 3000, 0), false)
	s, err := capture.OpenSet([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 100 { // open both files
		s.Next()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
		s.Progress()
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per frame, want 0", allocs)
	}
}

// TestSetReadsFIFOs: a named pipe or process substitution
// (icmpids replay <(tcpdump -w - ...)) can be read only once; the set keeps
// it open after the probe instead of reopening it, and merges it with a
// regular file in packet time.
func TestSetReadsFIFOs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "live.pcap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	piped := setFrames(t, start, 2*time.Millisecond, 3000, 0) // ~300 KB: more than a pipe buffer
	regular := filepath.Join(dir, "disk.pcap")
	writeSetFile(t, regular, setFrames(t, start.Add(time.Millisecond), 2*time.Millisecond, 10, 50000), false)
	writeErr := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			writeErr <- err
			return
		}
		err = synth.WritePcap(f, piped)
		f.Close()
		writeErr <- err
	}()
	s, err := capture.OpenSet([]string{fifo, regular})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	var last time.Time
	done := time.After(20 * time.Second)
	for {
		select {
		case <-done:
			t.Fatal("reading the FIFO did not finish")
		default:
		}
		fr, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if fr.Timestamp.Before(last) {
			t.Fatalf("frame %d out of order", n)
		}
		last = fr.Timestamp
		n++
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if n != 3010 {
		t.Fatalf("read %d frames, want 3010 (3000 from the FIFO, 10 from disk)", n)
	}
}
