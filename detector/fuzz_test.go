package detector

import (
	"testing"
	"time"
)

// fuzzLinks are the link types FuzzDecode feeds every input through: all
// the decoder supports and one it does not.
var fuzzLinks = []LinkType{LinkNull, LinkEthernet, LinkRawDLT12, LinkRawDLT14, LinkRaw, LinkLoop,
	LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2, 147}

// FuzzDecode decodes random bytes as a frame of every link type: Decode
// must never panic nor return an unknown reason, and an Engine with no rules
// must take the frame (fragment tracking and clock included) without panic.
//
//	go test -run '^$' -fuzz FuzzDecode -fuzztime 60s ./detector/
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.frame, uint32(0))
	}
	for _, fr := range encapFrames(f) {
		f.Add(fr, uint32(3))
	}
	f.Add([]byte{}, uint32(1))
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0x3f, 0xff, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, uint32(2)) // last fragment at 65,528
	f.Fuzz(func(t *testing.T, data []byte, tsOffset uint32) {
		d := NewDecoder()
		e, err := New(DefaultConfig(), SinkFunc(func(*Event) {}))
		if err != nil {
			t.Fatal(err)
		}
		ts := decodeEpoch.Add(time.Duration(tsOffset) * time.Microsecond)
		var p Packet
		for _, lt := range fuzzLinks {
			if r := d.Decode(lt, data, ts, len(data), &p); r >= NumReasons {
				t.Fatalf("link %d: reason %d", lt, r)
			}
			if p.CapLen != len(data) {
				t.Fatalf("link %d: CapLen %d of %d bytes", lt, p.CapLen, len(data))
			}
			e.HandleFrame(lt, data, ts, len(data))
		}
		e.Close("input_end")
		if s := e.Stats(); s.Frames != uint64(len(fuzzLinks)) {
			t.Fatalf("engine counted %d frames, want %d", s.Frames, len(fuzzLinks))
		}
	})
}
