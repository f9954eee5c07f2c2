package fleet

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

// floodObs is one sensor's icmp_flood record of 10.30.0.5 for the second
// starting at slot first: perSlot echo requests in each 100 ms bucket.
func floodObs(first int64, perSlot uint32) *detector.Observation {
	o := &detector.Observation{Rule: "icmp_flood", Key: netip.MustParseAddr("10.30.0.5"), Bits: 32,
		SlotWidth: 100 * time.Millisecond, FirstSlot: first, Slots: 10}
	for i := range 10 {
		o.Echo[i] = detector.SlotCount{Packets: perSlot, Bytes: uint64(perSlot) * 98}
		o.Any[i] = o.Echo[i]
	}
	return o
}

// fleetEngine is a real engine with the real icmp_flood rule judging the
// fleet's sums, and the events it raised.
func fleetEngine(t *testing.T) (*detector.Engine, *[]detector.Event) {
	t.Helper()
	var evs []detector.Event
	eng, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(ev *detector.Event) { evs = append(evs, *ev) }),
		rules.NewFlood(rules.DefaultFloodConfig()))
	if err != nil {
		t.Fatal(err)
	}
	return eng, &evs
}

// TestCorrelatorSkew: two gateways each see 600 echo requests/s of a 20 s
// flood of one host (1,200/s together, over icmp_flood's 1,000/s). One
// record far ahead of the fleet's clock — a forged sensor, or one of the
// two with a clock a year off for one record — must not judge the open
// intervals at once: the fleet raises one start and, at the input's end,
// one end (input_end), not an end a year early followed by every later
// record dropped as late. A record an hour behind is late: dropped and
// counted. On the code before the skew bound the forged record moved the
// watermark: the attack ended (quiet) and 16 s of records were late.
func TestCorrelatorSkew(t *testing.T) {
	slot0 := t0.UnixNano() / int64(100*time.Millisecond)
	for _, tc := range []struct {
		name, forger string
		ahead        time.Duration
	}{
		{"forged_sensor_a_year_ahead", "evil", 365 * 24 * time.Hour},
		{"gw1_clock_a_year_ahead_once", "gw1", 365 * 24 * time.Hour},
		{"forged_sensor_a_minute_ahead", "evil", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, evs := fleetEngine(t)
			c := New(eng, 2*time.Second, 10*time.Second)
			for s := range int64(20) {
				first := slot0 + 10*s
				c.Add("gw0", "", floodObs(first, 60))
				c.Add("gw1", "", floodObs(first, 60))
				if s == 4 {
					c.Add(tc.forger, "", floodObs(first+int64(tc.ahead/(100*time.Millisecond)), 60))
				}
				if s == 6 {
					c.Add("gw1", "", floodObs(first-int64(time.Hour/(100*time.Millisecond)), 60))
				}
				c.Flush(false) // one poll a second
			}
			c.Flush(true)
			eng.Close(detector.EndInputEnd)
			var phases []string
			for _, e := range *evs {
				phases = append(phases, e.Phase.String()+"/"+e.EndReason)
				if e.Time.After(t0.Add(time.Hour)) {
					t.Errorf("event at %v, after the flood", e.Time)
				}
			}
			if len(phases) < 2 || phases[0] != "start/" || phases[len(phases)-1] != "end/input_end" {
				t.Errorf("events %v, want one start … one end (input_end)", phases)
			}
			for _, p := range phases[1 : len(phases)-1] {
				if p != "update/" {
					t.Errorf("events %v, want one start, updates and one end", phases)
				}
			}
			if c.Ahead != 1 || c.Late != 1 {
				t.Errorf("ahead %d, late %d, want 1 and 1 (the forged record, the hour-old one)", c.Ahead, c.Late)
			}
			if end := (*evs)[len(*evs)-1]; end.Packets != 2*20*600 {
				t.Errorf("the fleet counted %d packets, want %d", end.Packets, 2*20*600)
			}
		})
	}
}

// TestCorrelatorSkewConfirmed: the benign twins. After a quiet hour both
// gateways' records come back an hour later together: the fleet's clock
// follows (the second sensor confirms the first), the first gateway's
// records of that second are held, not lost, and a second attack is raised
// and ended with every packet. A correlator that only ever saw one sensor
// follows that sensor's clock across a gap.
func TestCorrelatorSkewConfirmed(t *testing.T) {
	slot0 := t0.UnixNano() / int64(100*time.Millisecond)
	hour := int64(time.Hour / (100 * time.Millisecond))
	for _, sensors := range [][]string{{"gw0", "gw1"}, {"gw0"}} {
		t.Run(fmt.Sprint(len(sensors)), func(t *testing.T) {
			eng, evs := fleetEngine(t)
			c := New(eng, 2*time.Second, 10*time.Second)
			per := uint32(120 / len(sensors))
			for _, base := range []int64{slot0, slot0 + hour} {
				for s := range int64(5) {
					for _, n := range sensors {
						c.Add(n, "", floodObs(base+10*s, per))
					}
					c.Flush(false)
				}
			}
			c.Flush(true)
			eng.Close(detector.EndInputEnd)
			var starts, ends int
			var first, last detector.Event
			for _, e := range *evs {
				switch e.Phase {
				case detector.PhaseStart:
					if starts++; starts == 1 {
						first = e
					}
				case detector.PhaseEnd:
					ends++
					last = e
				}
			}
			if starts != 2 || ends != 2 || last.Packets != 5*1200 || !last.Started.Equal(first.Started.Add(time.Hour)) {
				t.Errorf("%d starts, %d ends, the last %d packets from %v; want 2, 2, 6000 from %v (the first's start + 1 h)",
					starts, ends, last.Packets, last.Started, first.Started.Add(time.Hour))
			}
			if c.Late != 0 || c.Pending() != 0 {
				t.Errorf("late %d, pending %d, want none", c.Late, c.Pending())
			}
		})
	}
}

// TestCorrelatorBounds: what a forger on the topic controls — prefixes,
// sensor names, times — cannot grow the correlator without bound: groups,
// records held, sensors per group and groups held ahead are capped, and
// what did not fit is counted.
func TestCorrelatorBounds(t *testing.T) {
	slot := t0.UnixNano() / int64(100*time.Millisecond)
	c := New(&recordingEngine{}, 2*time.Second, 10*time.Second)
	o := obs("10.0.0.0", slot, 1)
	for i := range 200_000 { // spoofed prefixes, one interval
		o.Key = netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 0})
		c.Add("gw0", "", o)
	}
	if c.Pending() > maxGroups || c.held > maxHeld || c.Evicted == 0 {
		t.Errorf("prefixes: %d groups, %d held, %d evicted; want at most %d, %d, and evictions counted",
			c.Pending(), c.held, c.Evicted, maxGroups, maxHeld)
	}
	c = New(&recordingEngine{}, 2*time.Second, 10*time.Second)
	o = obs("10.20.0.0", slot, 1)
	for i := range 5000 { // forged sensor names, one key
		c.Add(fmt.Sprintf("s%d", i), "", o)
	}
	if n := len(c.groups[groupKey{o.Rule, o.Key, o.Bits, o.FirstSlot}].sensors); n > maxSensors || c.Evicted != 5000-maxSensors {
		t.Errorf("sensor names: %d in the group, %d evicted; want %d and %d", n, c.Evicted, maxSensors, 5000-maxSensors)
	}
	c = New(&recordingEngine{}, 2*time.Second, 10*time.Second)
	c.Add("gw0", "", obs("10.20.0.0", slot, 1))
	for i := range 10_000 { // records from the future, each a new interval
		c.Add(fmt.Sprintf("f%d", i%2), "", obs("10.20.0.0", slot+int64(1000+1000*i), 1))
	}
	if c.aheadGroups > maxAheadGroups || c.Pending() > maxAheadGroups+1 || c.Evicted == 0 {
		t.Errorf("future records: %d ahead groups, %d pending, %d evicted", c.aheadGroups, c.Pending(), c.Evicted)
	}
}
