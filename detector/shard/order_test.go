package shard_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/capture/synth"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
)

// stall is a rule that raises nothing and makes its engine slow on some
// packets (a sleep every every-th packet, from offset), so that workers
// run at different, changing speeds.
type stall struct {
	n, every, offset int
}

func (s *stall) Info() detector.RuleInfo { return detector.RuleInfo{Name: "stall"} }

func (s *stall) Observe(*detector.Packet, detector.Reporter) {
	s.n++
	if (s.n+s.offset)%s.every == 0 {
		time.Sleep(200 * time.Microsecond)
	}
}

func (s *stall) Tick(time.Time, detector.Reporter) {}

// ordered records events in the order the sink receives them.
type ordered struct{ evs []*detector.Event }

func (o *ordered) Emit(ev *detector.Event) { o.evs = append(o.evs, ev) }

// lines is the events as "time rule phase target packets".
func (o *ordered) lines() []string {
	var out []string
	for _, ev := range o.evs {
		out = append(out, fmt.Sprintf("%s %s %s %s %d", ev.Time.Format("15:04:05.000000"), ev.Rule.Name, ev.Phase, ev.Target, ev.Packets))
	}
	return out
}

// TestEventOrderIsFixed: whatever the workers' speeds, a Set emits the same
// events in the same order on every run, and they are one engine's, in
// one engine's order (the ticks of every engine fall where one engine's
// would). The workers are slowed down unevenly, differently on each run:
// without the merge, events came in the order the workers got to them.
func TestEventOrderIsFixed(t *testing.T) {
	t.Run("mixed", func(t *testing.T) { testEventOrder(t, scenario(t)) })
	t.Run("simultaneous ends", func(t *testing.T) { testEventOrder(t, simultaneous(t)) })
}

// simultaneous: 24 floods of victims in 24 prefixes (spread over the
// workers) in lockstep, the first 12 ending together in one tick, the
// others still under way when the capture ends (ended by Close).
func simultaneous(t *testing.T) []synth.Frame {
	var lists [][]synth.Frame
	for i := 0; i < 24; i++ {
		count := 3000
		if i >= 12 {
			count = 9000
		}
		f, err := synth.Flood{Target: netip.AddrFrom4([4]byte{10, byte(i), 0, 5}), Source: netip.MustParseAddr("192.0.2.1"),
			Start: epoch.Add(time.Second), Rate: 3000, Count: count}.Frames()
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, f)
	}
	// Background after the first floods, so that their ends come in a
	// tick, not at Close.
	bg, err := synth.Pings(netip.MustParseAddr("10.99.0.20"), netip.MustParseAddr("10.99.0.1"), epoch, 100*time.Millisecond, 150)
	if err != nil {
		t.Fatal(err)
	}
	return synth.Merge(append(lists, bg)...)
}

func testEventOrder(t *testing.T, frames []synth.Frame) {
	var one ordered
	e, err := detector.New(detector.DefaultConfig(), &one, allRules(t)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		e.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
	}
	e.Close(detector.EndInputEnd)
	want := one.lines()
	if len(want) < 6 {
		t.Fatalf("the scenario raised only %v", want)
	}
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprint(n, "workers"), func(t *testing.T) {
			var first []string
			for run := 0; run < 3; run++ {
				var got ordered
				s, err := shard.New(shard.Config{Workers: n}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
					// Worker i stalls every 300+100i packets, shifted per run.
					slow := &stall{every: 300 + 100*i, offset: 137 * run * (i + 1)}
					return detector.New(detector.DefaultConfig(), sink, append(allRules(t), slow)...)
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range frames {
					s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
				}
				s.Close(detector.EndInputEnd)
				raw := got.lines()
				if run == 0 {
					first = raw
					if strings.Join(raw, "\n") != strings.Join(want, "\n") {
						t.Errorf("emitted\n%s\nwant (one engine)\n%s", strings.Join(raw, "\n"), strings.Join(want, "\n"))
					}
					continue
				}
				if strings.Join(raw, "\n") != strings.Join(first, "\n") {
					t.Fatalf("run %d emitted\n%s\nrun 0\n%s", run, strings.Join(raw, "\n"), strings.Join(first, "\n"))
				}
			}
		})
	}
}

// TestIdleAdvanceReleasesEvents: in live capture, when traffic stops, the
// sensor only calls Advance (every read time-out); the events a worker
// raised from the last frames must still reach the sink then, not wait for
// more traffic.
func TestIdleAdvanceReleasesEvents(t *testing.T) {
	// Background pings, then a Ping of Death: its alert is raised by the
	// very last frame, which no further frame follows.
	frames, err := synth.Pings(netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.1"), epoch, 10*time.Millisecond, 100)
	if err != nil {
		t.Fatal(err)
	}
	d, pieces := synth.PingTrain(netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("10.0.0.6"), 42, 65600, 1480)
	pod, err := d.Frames(pieces, epoch.Add(2*time.Second), 10*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, pod...)
	const want = "ping_of_death start 10.0.0.6"
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprint(n, "workers"), func(t *testing.T) {
			var got collector
			s, err := shard.New(shard.Config{Workers: n}, &got, func(i int, sink detector.Sink) (*detector.Engine, error) {
				return detector.New(detector.DefaultConfig(), sink, allRules(t)...)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(detector.EndShutdown)
			for _, f := range frames {
				s.HandleFrame(detector.LinkEthernet, f.Data, f.Time, len(f.Data))
			}
			// Idle: Advance at packet time's last value plus a little
			// (well inside the hold time), as the read time-outs would.
			now := frames[len(frames)-1].Time
			if got.has(want) {
				t.Logf("released before the idle time (a batch was handed over)")
			}
			for i := 0; i < 100 && !got.has(want); i++ {
				now = now.Add(10 * time.Millisecond)
				s.Advance(now)
				time.Sleep(20 * time.Millisecond)
			}
			if !got.has(want) {
				got.mu.Lock()
				defer got.mu.Unlock()
				t.Fatalf("after 100 idle Advance calls (2 s), the sink has %v", got.evs)
			}
		})
	}
}
