package capture

import (
	"testing"
	"time"
)

func TestDLTToLinkType(t *testing.T) {
	cases := []struct {
		dlt  int
		goos string
		want uint16
	}{
		{0, "linux", 0}, {1, "linux", 1}, {12, "linux", 101}, {14, "linux", 101},
		{12, "openbsd", 108}, {14, "openbsd", 101}, {113, "linux", 113}, {276, "linux", 276}, {108, "openbsd", 108},
	}
	for _, c := range cases {
		if got := dltToLinkType(c.dlt, c.goos); got != c.want {
			t.Errorf("dltToLinkType(%d, %s) = %d, want %d", c.dlt, c.goos, got, c.want)
		}
	}
}

func TestTSResolution(t *testing.T) {
	cases := []struct {
		resol uint8
		ts    uint64
		want  time.Time
		ok    bool
	}{
		{6, 1_700_000_000_123_456, time.Unix(1_700_000_000, 123_456_000), true},
		{9, 1_700_000_000_123_456_789, time.Unix(1_700_000_000, 123_456_789), true},
		{3, 1_700_000_000_123, time.Unix(1_700_000_000, 123_000_000), true},
		{0x80 | 20, 5<<20 | 1<<19, time.Unix(5, 500_000_000), true}, // 2^-20 s units
		{19, 10_000_000_000_000_000_000, time.Unix(1, 0), true},
		{20, 0, time.Time{}, false},
		{0x80 | 64, 0, time.Time{}, false},
	}
	for _, c := range cases {
		units, ok := tsUnits(c.resol)
		if ok != c.ok {
			t.Errorf("tsUnits(%#x) ok = %v", c.resol, ok)
			continue
		}
		if !ok {
			continue
		}
		in := ngInterface{unitsSec: units}
		if got := in.time(c.ts); !got.Equal(c.want) {
			t.Errorf("resol %#x ts %d: %v, want %v", c.resol, c.ts, got, c.want)
		}
	}
}
