package main

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/icmpids/icmpids/detector"
)

// restartMargin is how far before an open fleet attack's start the
// correlator keeps its records uncommitted: the rules' window (1 s) and
// the host bitmap's second window, which the start was judged over.
const restartMargin = 3 * time.Second

// maxMarks bounds the records a partition keeps uncommitted for a restart
// (an attack open for hours over many prefixes); past it the oldest are
// committed anyway (a restart then raises that attack with a new start)
// and counted.
const maxMarks = 1 << 20

// fleetCommits decides the correlator's committed offsets, so that a
// correlator restarted in its group re-reads every record it needs to
// raise the same attacks again with the same ids (they depend on the
// start): per partition, the offset of the oldest record polled whose
// interval ends after the floor — the judged watermark, or, while a fleet
// attack is open, restartMargin before the earliest open start. It is
// also a sink tapping the correlator's events, to know the open attacks.
type fleetCommits struct {
	topic string
	mu    sync.Mutex // parts: the group's rebalance callbacks run beside the loop
	parts map[int32][]recordMark
	done  map[int32]int64 // offsets committed
	open  map[openAttack]time.Time
	// behind holds the partitions whose last fetch ended short of their
	// high watermark: records wait that the next fetch brings.
	behind map[int32]bool
	// GaveUp counts the records committed early for lack of room.
	GaveUp uint64
	last   time.Time
	// joined is when the group last gave this correlator its partitions.
	joined time.Time
	// inflight is closed when the periodic commit in flight ends (nil:
	// none); cancel cancels it.
	inflight chan struct{}
	cancel   context.CancelFunc
}

type recordMark struct{ offset, end int64 }

type openAttack struct {
	rule   string
	target netip.Addr
}

func newFleetCommits(topic string) *fleetCommits {
	return &fleetCommits{topic: topic, parts: map[int32][]recordMark{}, done: map[int32]int64{}, open: map[openAttack]time.Time{},
		behind: map[int32]bool{}}
}

// Emit implements detector.Sink: it follows the fleet attacks' starts and
// ends.
func (f *fleetCommits) Emit(ev *detector.Event) {
	k := openAttack{ev.Rule.Name, ev.Target}
	switch ev.Phase {
	case detector.PhaseStart:
		f.open[k] = ev.Started
	case detector.PhaseEnd:
		delete(f.open, k)
	}
}

// polled notes a record the correlator took (end: its interval's end,
// Unix ns).
func (f *fleetCommits) polled(r *kgo.Record, end int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.done[r.Partition]; !ok {
		f.done[r.Partition] = r.Offset // where this correlator began
	}
	m := append(f.parts[r.Partition], recordMark{r.Offset, end})
	if len(m) > maxMarks {
		n := len(m) - maxMarks
		f.GaveUp += uint64(n)
		m = m[n:]
	}
	f.parts[r.Partition] = m
}

// fetched notes how far a fetch of a partition reached: the partition is
// behind while the fetch's last record is short of its high watermark (the
// fetch was cut at the fetch size: more records wait). A fetch that
// brought a partition nothing, or failed, leaves it not waited for: a
// partition whose last offsets hold no records for the consumer (another
// producer's transaction markers) must not stall judging.
func (f *fleetCommits) fetched(p kgo.FetchTopicPartition) {
	if p.Topic != f.topic {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(p.Records); n > 0 && p.Err == nil && p.Records[n-1].Offset+1 < p.HighWatermark {
		f.behind[p.Partition] = true
	} else {
		delete(f.behind, p.Partition)
	}
}

// caughtUp tells whether every partition fetched so far was fetched to
// its high watermark.
func (f *fleetCommits) caughtUp() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.behind) == 0
}

// assigned notes when the group gave this correlator partitions of the
// topic (--until-idle counts from then); an assignment of none (the
// group's leader did not know the topic yet: a new assignment follows)
// does not count.
func (f *fleetCommits) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if len(m[f.topic]) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined = time.Now()
}

// joinedAt is when the group last assigned this correlator partitions
// (zero: not yet).
func (f *fleetCommits) joinedAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joined
}

// revoked forgets partitions the group gave to another correlator (it
// starts from what this one committed).
func (f *fleetCommits) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range m[f.topic] {
		delete(f.parts, p)
		delete(f.done, p)
		delete(f.behind, p)
	}
}

// offsets returns what to commit: per partition, the oldest record
// ending after the floor (judged: the correlator's watermark), or past
// the last record polled when none does; only those that moved.
func (f *fleetCommits) offsets(judged int64) map[int32]int64 {
	floor := judged
	for _, s := range f.open {
		floor = min(floor, s.Add(-restartMargin).UnixNano())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int32]int64{}
	for p, marks := range f.parts {
		if len(marks) == 0 {
			continue
		}
		at := marks[len(marks)-1].offset + 1
		for _, m := range marks {
			if m.end > floor {
				at = min(at, m.offset)
			}
		}
		if at <= f.done[p] {
			continue
		}
		out[p] = at
		i := 0
		for i < len(marks) && marks[i].offset < at {
			i++
		}
		f.parts[p] = marks[i:]
	}
	return out
}

// commitTimeout bounds a periodic commit (it runs beside the consume
// loop); shutdownCommitTimeout the last one, after a signal (the bus may be gone: the outputs' flush
// still needs its share of the few seconds a shutdown takes).
const (
	commitTimeout         = 5 * time.Second
	shutdownCommitTimeout = time.Second
)

// commit commits the offsets that moved, at most once a second unless
// final (the last commit, after a signal or at the input's end). A
// periodic commit goes out beside the consume loop, which goes on judging
// while the bus is slow or gone: one at a time, for at most commitTimeout
// (none starts while one is in flight). The final one cancels the one in
// flight and waits at most shutdownCommitTimeout itself.
func (f *fleetCommits) commit(cl *kgo.Client, judged int64, final bool, log *logrus.Logger) {
	if final {
		f.stopInflight()
	} else if f.busy() || time.Since(f.last) < time.Second {
		return
	}
	f.last = time.Now()
	offs := f.offsets(judged)
	if len(offs) == 0 {
		return
	}
	req := map[int32]kgo.EpochOffset{}
	for p, o := range offs {
		req[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	timeout := commitTimeout
	if final {
		timeout = shutdownCommitTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	done := make(chan struct{})
	send := func() {
		defer close(done)
		defer cancel()
		var err error
		cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{f.topic: req}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, e error) { err = e })
		if err != nil {
			log.WithError(err).Warn("correlate: committing offsets")
			return
		}
		f.mu.Lock()
		for p, o := range offs {
			f.done[p] = max(f.done[p], o)
		}
		f.mu.Unlock()
	}
	if final {
		send()
		return
	}
	f.inflight, f.cancel = done, cancel
	go send()
}

// busy tells whether a periodic commit is in flight.
func (f *fleetCommits) busy() bool {
	if f.inflight == nil {
		return false
	}
	select {
	case <-f.inflight:
		f.inflight, f.cancel = nil, nil
		return false
	default:
		return true
	}
}

// stopInflight cancels the periodic commit in flight, if any, and waits
// for it to end (a cancelled commit returns at once).
func (f *fleetCommits) stopInflight() {
	if f.inflight != nil {
		f.cancel()
		<-f.inflight
		f.inflight, f.cancel = nil, nil
	}
}
