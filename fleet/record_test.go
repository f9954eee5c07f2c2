package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// TestRecordClasses: blacknurse's port unreachables and frag_flood's
// trains travel in their own arrays, written only when not all zero; an
// older sensor's record without them decodes with none; arrays of another
// length than the slots' are refused.
func TestRecordClasses(t *testing.T) {
	o := obs("10.40.0.9", t0.UnixNano()/int64(100*time.Millisecond), 0)
	o.Rule, o.Bits, o.Hosts = "blacknurse", 32, [8]uint64{}
	for i := range 10 {
		o.PortUnreach[i] = detector.SlotCount{Packets: uint32(100 + i), Bytes: uint64(70 * (100 + i))}
		o.TrainsOpened[i] = detector.SlotCount{Packets: uint32(i), Bytes: uint64(200 * i)}
	}
	_, value, err := Encode("gw0", o)
	if err != nil {
		t.Fatal(err)
	}
	s := string(value)
	if !strings.Contains(s, `"port_unreach_packets":[100,101,`) || !strings.Contains(s, `"trains_opened_bytes":[0,200,`) || strings.Contains(s, "trains_completed") {
		t.Errorf("record %s", s)
	}
	var got detector.Observation
	got.TrainsCompleted[3].Packets = 9 // left over from an earlier record
	if _, err := Decode(value, &got); err != nil {
		t.Fatal(err)
	}
	if got.PortUnreach != o.PortUnreach || got.TrainsOpened != o.TrainsOpened || got.TrainsCompleted != o.TrainsCompleted {
		t.Errorf("decoded %+v\nwant    %+v", got, *o)
	}
	old := `{"type":"icmpids.observation","sensor":"gw1","rule":"icmp_carpet_flood","key":"10.20.0.0/24","time":"2026-11-27T10:00:01.000000+0000","slot_ns":100000000,"first_slot":17964756000,` +
		`"echo_packets":[1,2],"echo_bytes":[98,196],"any_packets":[1,2],"any_bytes":[98,196],"hosts_bitmap":"` + strings.Repeat("0", 128) + `","host_total":3}`
	if _, err := Decode([]byte(old), &got); err != nil || got.Slots != 2 || got.PortUnreach != o.TrainsCompleted || got.Any[1].Packets != 2 {
		t.Errorf("older record: %v, %+v", err, got)
	}
	for _, bad := range []string{
		strings.Replace(s, `"port_unreach_packets":[100,`, `"port_unreach_packets":[`, 1),
		strings.Replace(s, `"trains_opened_bytes":`, `"x":`, 1),
	} {
		if _, err := Decode([]byte(bad), &got); err == nil {
			t.Errorf("Decode(%.80q…) passed", bad)
		}
	}
}

// TestRecordHLL: the source and host registers travel as 128 hex digits,
// left out when empty; an older record without them decodes with empty
// registers; registers of another size, not hex, or above the largest
// rank are refused.
func TestRecordHLL(t *testing.T) {
	o := obs("10.20.0.0", t0.UnixNano()/int64(100*time.Millisecond), 5)
	for i := range 300 {
		o.Sources.AddHash(uint64(i+1) * 0x9e3779b97f4a7c15)
	}
	_, value, err := Encode("gw0", o)
	if err != nil {
		t.Fatal(err)
	}
	s := string(value)
	if strings.Contains(s, "hosts_hll") || !strings.Contains(s, `"sources_hll":"`) {
		t.Fatalf("record %s", s)
	}
	var got detector.Observation
	got.HostsHLL.AddHash(1) // left over
	if _, err := Decode(value, &got); err != nil {
		t.Fatal(err)
	}
	if got.Sources != o.Sources || !got.HostsHLL.Empty() {
		t.Errorf("registers %v / %v, want %v / empty", got.Sources, got.HostsHLL, o.Sources)
	}
	i := strings.Index(s, `"sources_hll":"`) + len(`"sources_hll":"`)
	for _, bad := range []string{
		s[:i] + "zz" + s[i+2:],
		s[:i] + s[i+2:],
		s[:i] + "ff" + s[i+2:], // rank 255
	} {
		if _, err := Decode([]byte(bad), &got); err == nil || !strings.Contains(err.Error(), "sources_hll") {
			t.Errorf("Decode(…%.40q…): %v", bad[i-15:], err)
		}
	}
}
