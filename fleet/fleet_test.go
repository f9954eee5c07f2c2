package fleet

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func obs(key string, firstSlot int64, perSlot uint32) *detector.Observation {
	o := &detector.Observation{Rule: "icmp_carpet_flood", Key: netip.MustParseAddr(key), Bits: 24,
		SlotWidth: 100 * time.Millisecond, FirstSlot: firstSlot, Slots: 10, HostTotal: 100}
	for i := range 10 {
		o.Echo[i] = detector.SlotCount{Packets: perSlot, Bytes: uint64(perSlot) * 98}
		o.Any[i] = o.Echo[i]
	}
	o.Hosts[0] = 0xff
	o.TopHosts = []detector.SourceCount{{Addr: netip.MustParseAddr("10.20.0.7"), Packets: 9}}
	return o
}

// TestRecordRoundTrip: a record decodes to the observation it was made
// of; the sensor's open attack becomes its attack id.
func TestRecordRoundTrip(t *testing.T) {
	o := obs("10.20.0.0", t0.UnixNano()/int64(100*time.Millisecond), 200)
	o.AttackStarted = t0
	key, value, err := Encode("gw0", o)
	if err != nil {
		t.Fatal(err)
	}
	if string(key) != "10.20.0.0/24" {
		t.Errorf("key %q, want the prefix", key)
	}
	var got detector.Observation
	rec, err := Decode(value, &got)
	if err != nil {
		t.Fatal(err)
	}
	got.AttackStarted = o.AttackStarted
	if rec.Sensor != "gw0" || len(rec.AttackID) != 16 || rec.Time != "2026-11-27T10:00:01.000000+0000" {
		t.Errorf("record %+v", rec)
	}
	if got.Key != o.Key || got.Bits != 24 || got.Echo != o.Echo || got.Any != o.Any || got.Hosts != o.Hosts ||
		got.FirstSlot != o.FirstSlot || got.Slots != 10 || got.HostTotal != 100 || len(got.TopHosts) != 1 || got.TopHosts[0] != o.TopHosts[0] {
		t.Errorf("decoded %+v\nwant    %+v", got, *o)
	}
	for _, bad := range []string{`{}`, `{"type":"x"}`, `not json`,
		strings.Replace(string(value), `"hosts_bitmap":"`, `"hosts_bitmap":"zz`, 1),
		strings.Replace(string(value), `"key":"10.20.0.0/24"`, `"key":"10.20.0.0"`, 1),
		strings.Replace(string(value), fmt.Sprintf(`"first_slot":%d`, o.FirstSlot), `"first_slot":9223372036854775000`, 1),
		strings.Replace(string(value), fmt.Sprintf(`"first_slot":%d`, o.FirstSlot), `"first_slot":-1`, 1)} {
		if _, err := Decode([]byte(bad), &got); err == nil {
			t.Errorf("Decode(%.60q) passed", bad)
		}
	}
}

// recordingEngine keeps what the correlator feeds it.
type recordingEngine struct {
	got     []detector.Observation
	advance []time.Time
}

func (e *recordingEngine) ObserveFleet(o *detector.Observation) { e.got = append(e.got, *o) }
func (e *recordingEngine) Advance(now time.Time)                { e.advance = append(e.advance, now) }
func (e *recordingEngine) Close(string)                         {}

// TestCorrelatorSums: records of one interval are summed over sensors
// once the watermark passed it; a sensor's repeat replaces its record; a
// record behind the watermark is late; a key a sensor reports itself is
// not judged.
func TestCorrelatorSums(t *testing.T) {
	e := &recordingEngine{}
	c := New(e, 2*time.Second, 10*time.Second)
	slot := t0.UnixNano() / int64(100*time.Millisecond)
	c.Add("gw0", "", obs("10.20.0.0", slot, 100))
	c.Add("gw1", "", obs("10.20.0.0", slot, 50))
	c.Add("gw1", "", obs("10.20.0.0", slot, 50)) // redelivered
	c.Add("gw0", "", obs("10.30.0.0", slot, 100))
	c.Add("gw1", "abcd", obs("10.30.0.0", slot, 100)) // gw1 reports it itself
	c.Flush(false)
	if len(e.got) != 0 {
		t.Fatalf("judged before the watermark passed: %+v", e.got)
	}
	c.Add("gw0", "", obs("10.20.0.0", slot+30, 1)) // 3 s later: the watermark passes the first
	c.Flush(false)
	if len(e.got) != 1 {
		t.Fatalf("judged %d sums, want 1 (10.30.0.0 is a sensor's own attack)", len(e.got))
	}
	if s := e.got[0]; s.Key != netip.MustParseAddr("10.20.0.0") || s.Echo[0].Packets != 150 || s.Any[9].Bytes != 150*98 || s.HostTotal != 200 || s.TopHosts[0].Packets != 18 {
		t.Errorf("sum %+v", s)
	}
	if c.Suppressed != 1 {
		t.Errorf("suppressed %d, want 1", c.Suppressed)
	}
	c.Add("gw2", "", obs("10.20.0.0", slot, 100)) // behind the watermark
	if c.Late != 1 {
		t.Errorf("late %d, want 1", c.Late)
	}
	extra := map[string]any{}
	c.Describe("icmp_carpet_flood", netip.MustParseAddr("10.20.0.0"), extra)
	ss, _ := extra["sensors"].([]any)
	if len(ss) != 2 || ss[0].(map[string]any)["name"] != "gw0" || ss[0].(map[string]any)["share"] != 0.667 {
		t.Errorf("sensors %v", extra["sensors"])
	}
	extra = map[string]any{}
	c.Describe("icmp_carpet_flood", netip.MustParseAddr("10.30.0.0"), extra)
	if ids, _ := extra["sensor_attack_ids"].([]any); len(ids) != 1 || ids[0] != "abcd" {
		t.Errorf("sensor_attack_ids %v", extra["sensor_attack_ids"])
	}
	c.Flush(true)
	if len(e.got) != 2 || c.Pending() != 0 {
		t.Errorf("after the final flush: %d sums, %d pending", len(e.got), c.Pending())
	}
}

// FuzzDecode: a record is untrusted bytes from the bus: Decode never
// panics, and what it accepts is within the Observation's bounds.
func FuzzDecode(f *testing.F) {
	o := obs("10.20.0.0", 1, 3)
	_, v, err := Encode("gw0", o)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	f.Add([]byte(`{"type":"icmpids.observation","sensor":"x","key":"::/0","slot_ns":1,"any_packets":[1],"any_bytes":[1],"echo_packets":[1],"echo_bytes":[1],"hosts_bitmap":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got detector.Observation
		if _, err := Decode(b, &got); err != nil {
			return
		}
		if got.Slots < 1 || got.Slots > detector.FleetSlots || len(got.TopHosts) > maxTopHosts || got.SlotWidth <= 0 {
			t.Errorf("accepted %+v", got)
		}
		c := New(&recordingEngine{}, time.Second, 10*time.Second)
		c.Add("s", "", &got)
		c.Flush(true)
	})
}
