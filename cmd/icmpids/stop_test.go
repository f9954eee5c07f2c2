package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
)

// manyAlerts writes a capture raising 2 × targets alerts (a start and an
// end for each of targets hosts flooded above a 10 pps level) and returns
// its path and a config setting that level.
func manyAlerts(t *testing.T, targets int) (pcap, cfg string) {
	t.Helper()
	dir := t.TempDir()
	var frames []synth.Frame
	start := epoch
	for i := 0; i < targets; i++ {
		dst := netip.AddrFrom4([4]byte{10, 50, byte(i >> 8), byte(i)})
		for k := 0; k < 20; k++ {
			d, err := synth.EchoFrame(synth.Echo{Src: netip.MustParseAddr("198.51.100.7"), Dst: dst, ID: 1, Seq: uint16(k)})
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, synth.Frame{Time: start.Add(time.Duration(i)*time.Millisecond + time.Duration(k)*10*time.Millisecond), Data: d})
		}
	}
	frames = synth.Merge(frames)
	pcap = filepath.Join(dir, "many.pcap")
	if err := synth.WritePcapFile(pcap, frames); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "icmpids.yaml")
	yaml := "engine:\n  hold_time: 1s\n  max_attacks: 1048576\nrules:\n  icmp_flood:\n    echo_pps: 10\n    any_pps: 20\n  icmp_sweep:\n    enabled: false\n  icmp_carpet_flood:\n    enabled: false\nsyslog:\n  block_timeout: 2s\n  write_timeout: 1s\n  queue_size: 100\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return pcap, cfg
}

// runFor runs the command line in-process, cancels its context (a
// signal) after stopAfter (0: never), and returns its exit code, output
// and how long it ran.
func runFor(t *testing.T, stopAfter time.Duration, args ...string) (int, string, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stopAfter > 0 {
		time.AfterFunc(stopAfter, cancel)
	}
	var out, errb bytes.Buffer
	began := time.Now()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String(), time.Since(began)
}

// A replay of a FIFO nobody writes to waits, says so once, and ends at
// once on a signal.
func TestReplayFIFOWithoutWriterStops(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	code, _, stderr, took := runFor(t, 700*time.Millisecond, "replay", "--format", "none", fifo)
	if took > 3*time.Second {
		t.Fatalf("took %v after the signal", took)
	}
	if code != 1 || !strings.Contains(stderr, "waiting for a writer") || !strings.Contains(stderr, "interrupted") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Count(stderr, "waiting for a writer on the FIFO") != 1 {
		t.Errorf("the wait is not logged exactly once:\n%s", stderr)
	}
}

// Dead collectors cannot hold a replay: UDP to a closed port finishes
// (port unreachables are no reason to stall), a TCP receiver that never
// reads costs at most block_timeout plus a few seconds, and a signal ends
// the wait at once; what the receiver never read is not counted as sent.
func TestReplayDeadCollectors(t *testing.T) {
	pcap, cfg := manyAlerts(t, 2000)
	// UDP: a port with no listener on loopback.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := pc.LocalAddr().String()
	pc.Close()
	code, _, stderr, took := runFor(t, 0, "replay", "--config", cfg, "--format", "none", "--syslog", "udp://"+udpAddr, pcap)
	if code != 0 || took > 20*time.Second {
		t.Errorf("udp to a closed port: exit %d after %v\n%s", code, took, lastLines(stderr, 5))
	}

	// TCP: a receiver that accepts and never reads.
	collector := nonReadingCollector(t)
	code, _, stderr, took = runFor(t, 0, "replay", "--config", cfg, "--format", "none", "--syslog", "tcp://"+collector, pcap)
	if took > 2*time.Second+15*time.Second {
		t.Errorf("a never-reading receiver held the replay %v (block_timeout 2s)", took)
	}
	if !strings.Contains(stderr, "block_timeout") {
		t.Errorf("no stall logged:\n%s", lastLines(stderr, 8))
	}
	// What the abandoned connections' send queues held is counted as
	// dropped (what the receiver's kernel buffered is invisible here).
	if !strings.Contains(stderr, "never took the last alerts written: counted as dropped") || sentCount(stderr) >= 2000 {
		t.Errorf("exit %d, unread alerts counted as sent:\n%s", code, lastLines(stderr, 5))
	}

	// And a signal ends the wait at once.
	_, _, _, took = runFor(t, 500*time.Millisecond, "replay", "--config", cfg, "--format", "none", "--syslog", "tcp://"+collector, pcap)
	if took > 5*time.Second {
		t.Errorf("the signal took %v to end the replay", took)
	}
}

// sentCount reads syslog_sent=N from the replay's summary line.
func sentCount(stderr string) int {
	i := strings.LastIndex(stderr, "syslog_sent=")
	if i < 0 {
		return -1
	}
	n := 0
	for _, c := range stderr[i+len("syslog_sent="):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// A collector that takes one connection (nc -l) gets every alert: the
// start-up check's connection is the one alerts go on.
func TestReplayOneConnectionCollector(t *testing.T) {
	pcap, cfg := manyAlerts(t, 50)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var lines atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		l.Close() // one connection, like nc -l
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			// RFC 6587 octet counting: "LEN SP MSG".
			sp := bytes.IndexByte(data, ' ')
			if sp < 0 {
				return 0, nil, nil
			}
			n := 0
			for _, b := range data[:sp] {
				n = n*10 + int(b-'0')
			}
			if len(data) < sp+1+n {
				return 0, nil, nil
			}
			return sp + 1 + n, data[sp+1 : sp+1+n], nil
		})
		for sc.Scan() {
			lines.Add(1)
		}
	}()
	code, _, stderr, _ := runFor(t, 0, "replay", "--config", cfg, "--format", "none", "--syslog", "tcp://"+l.Addr().String(), pcap)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	<-done
	if got := lines.Load(); got != 100 {
		t.Errorf("the one-connection collector got %d alerts, want 100\n%s", got, lastLines(stderr, 5))
	}
}

// A replay writes EVE stats events in packet time, every
// output.eve_stats_interval of the capture's own time.
func TestReplayEVEStatsInPacketTime(t *testing.T) {
	eve := filepath.Join(t.TempDir(), "eve.json")
	t.Setenv("ICMPIDS_OUTPUT_EVE_STATS_INTERVAL", "10s")
	code, _, stderr := icmpids(t, "replay", "--format", "none", "--eve", eve, filepath.Join("testdata", "demo.pcap"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(eve)
	if err != nil {
		t.Fatal(err)
	}
	var stamps []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, `"event_type":"stats"`) {
			stamps = append(stamps, l[len(`{"timestamp":"`):len(`{"timestamp":"`)+19])
		}
	}
	want := []string{"2026-11-27T10:00:10", "2026-11-27T10:00:20", "2026-11-27T10:00:30", "2026-11-27T10:00:40", "2026-11-27T10:00:50"}
	if strings.Join(stamps, " ") != strings.Join(want, " ") {
		t.Errorf("stats events at %v, want %v", stamps, want)
	}
}

// nonReadingCollector listens on a loopback TCP port, accepts every
// connection and never reads from it (a collector that has stalled), and
// returns its address; the listener and connections close with the test.
func nonReadingCollector(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return holdConnections(t, l)
}

// holdConnections accepts every connection on l and never reads from it;
// l and the connections close with the test. It returns l's address.
func holdConnections(t *testing.T, l net.Listener) string {
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
