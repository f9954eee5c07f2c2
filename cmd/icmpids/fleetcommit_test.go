package main

import (
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/icmpids/icmpids/detector"
)

// TestFleetCommitOffsets: what the correlator commits per partition is
// the oldest record ending after the watermark, or before an open fleet
// attack's start less restartMargin; an attack's end releases its
// records; nothing moves backwards; a revoked partition is forgotten.
func TestFleetCommitOffsets(t *testing.T) {
	sec := func(s int) int64 { return epoch.Add(time.Duration(s) * time.Second).UnixNano() }
	f := newFleetCommits("icmpids.obs")
	// Partition 0: one record a second, offsets 0…19 for seconds 1…20;
	// partition 1: offsets 100…104 for seconds 1…5.
	for i := range 20 {
		f.polled(&kgo.Record{Partition: 0, Offset: int64(i)}, sec(i+1))
	}
	for i := range 5 {
		f.polled(&kgo.Record{Partition: 1, Offset: int64(100 + i)}, sec(i+1))
	}
	ev := &detector.Event{Rule: detector.RuleInfo{Name: "icmp_carpet_flood"}, Target: netip.MustParseAddr("10.20.0.0"), Started: epoch.Add(12 * time.Second)}
	for i, step := range []struct {
		judged int64
		phase  detector.Phase // an event before the step (PhaseUpdate: none)
		want   map[int32]int64
	}{
		{judged: sec(0), phase: detector.PhaseUpdate, want: map[int32]int64{}},
		{judged: sec(5), phase: detector.PhaseUpdate, want: map[int32]int64{0: 5, 1: 105}},
		{judged: sec(18), phase: detector.PhaseStart, want: map[int32]int64{0: 9}}, // start 12 s - 3 s: seconds 10… stay
		{judged: sec(19), phase: detector.PhaseUpdate, want: map[int32]int64{}},
		{judged: sec(19), phase: detector.PhaseEnd, want: map[int32]int64{0: 19}},
	} {
		if step.phase != detector.PhaseUpdate {
			ev.Phase = step.phase
			f.Emit(ev)
		}
		if got := f.offsets(step.judged); !maps.Equal(got, step.want) {
			t.Errorf("step %d: commit %v, want %v", i, got, step.want)
		}
		for p, o := range step.want {
			f.done[p] = o
		}
	}
	f.revoked(nil, nil, map[string][]int32{"icmpids.obs": {0}})
	if _, ok := f.parts[0]; ok {
		t.Errorf("partition 0 kept after its revocation")
	}
}
