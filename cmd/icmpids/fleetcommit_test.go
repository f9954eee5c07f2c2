package main

import (
	"context"
	"io"
	"maps"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestFleetCommitBusDown: a periodic commit goes out beside the consume
// loop: with the bus up it lands (the committed offset moves); with the
// bus gone it does not hold the loop up (the old commit waited
// commitTimeout, 5 s, each second), a second one is not started while it
// is in flight, and the final commit after a signal cancels it and ends
// within about shutdownCommitTimeout. The bounds are behaviour bounds,
// with slack for a loaded machine.
func TestFleetCommitBusDown(t *testing.T) {
	c := startKafka(t)
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "icmpids.obs", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	f := newFleetCommits("icmpids.obs")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("commit-test"), kgo.ConsumeTopics("icmpids.obs"),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.OnPartitionsRevoked(f.revoked))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Record i's interval ends at i+1 (ns): judged at 1, offset 1 is
	// committed; judged past 3, offset 3.
	for n := 0; n < 3 && ctx.Err() == nil; {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			f.polled(r, r.Offset+1)
			n++
		})
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	f.commit(cl, 1, false, log)
	for f.busy() && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	got := f.done[0]
	f.mu.Unlock()
	if got != 1 {
		t.Fatalf("committed offset %d with the bus up, want 1", got)
	}
	// The group's coordinator goes away (it answers every commit
	// "not available": the client retries until the commit's deadline).
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Err: kerr.CoordinatorNotAvailable, Count: -1})
	f.last = time.Time{}
	for i, final := range []bool{false, false, true} {
		began := time.Now()
		f.commit(cl, math.MaxInt64, final, log)
		took := time.Since(began)
		if limit := map[bool]time.Duration{false: time.Second, true: shutdownCommitTimeout + 2*time.Second}[final]; took > limit {
			t.Errorf("commit %d (final %v) with the coordinator gone took %v, want under %v", i, final, took.Round(time.Millisecond), limit)
		}
		if i == 0 && !f.busy() {
			t.Errorf("the commit with the coordinator gone is not in flight")
		}
		f.last = time.Time{}
	}
	if f.busy() {
		t.Errorf("a commit is still in flight after the final one")
	}
}

// TestFleetCaughtUp: a partition is behind while its last fetch ended
// short of its high watermark, caught up once a fetch reaches it (or
// brings nothing); a failing partition, another topic's, or a revoked
// one is not waited for.
func TestFleetCaughtUp(t *testing.T) {
	fetch := func(topic string, p int32, last, hw int64, err error) kgo.FetchTopicPartition {
		fp := kgo.FetchTopicPartition{Topic: topic, FetchPartition: kgo.FetchPartition{Partition: p, HighWatermark: hw, Err: err}}
		if last >= 0 {
			fp.Records = []*kgo.Record{{Partition: p, Offset: last}}
		}
		return fp
	}
	f := newFleetCommits("icmpids.obs")
	for i, step := range []struct {
		fetch kgo.FetchTopicPartition
		want  bool
	}{
		{fetch("icmpids.obs", 0, 9, 10, nil), true},
		{fetch("icmpids.obs", 0, 9, 50, nil), false},  // cut at the fetch size
		{fetch("icmpids.obs", 1, 4, 5, nil), false},   // partition 0 still behind
		{fetch("other", 0, 49, 50, nil), false},       // another topic's
		{fetch("icmpids.obs", 0, 49, 50, nil), true},  // reached
		{fetch("icmpids.obs", 1, 4, 90, nil), false},  // behind
		{fetch("icmpids.obs", 1, -1, 90, nil), true},  // brought nothing
		{fetch("icmpids.obs", 0, 59, 90, nil), false}, // behind
		{fetch("icmpids.obs", 0, 59, 90, kerr.UnknownServerError), true},
	} {
		f.fetched(step.fetch)
		if got := f.caughtUp(); got != step.want {
			t.Errorf("step %d: caught up %v, want %v", i, got, step.want)
		}
	}
	f.fetched(fetch("icmpids.obs", 2, 0, 90, nil))
	f.revoked(nil, nil, map[string][]int32{"icmpids.obs": {2}})
	if !f.caughtUp() {
		t.Errorf("a revoked partition is waited for")
	}
}
