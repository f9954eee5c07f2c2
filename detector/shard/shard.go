// Package shard runs several detection engines on several cores. Each
// engine owns a disjoint shard of targets — the hash of the victim's
// address (sketch.HashAddr) picks it — so no lock and no shared map sits on
// the hot path. A dispatcher (the goroutine that calls HandleFrame)
// decodes each frame just enough to route it, copies its bytes into the
// chosen worker's preallocated batch, and hands full batches to the worker
// over a bounded channel; a worker decodes and detects as a single engine
// would. Nothing is allocated per packet.
//
// Routing, and what it means for the rules (each engine has its own rules
// and attack tracker):
//
//   - By destination: everything by default. icmp_flood and the fragment
//     rules are keyed by destination, and a fragment train (src, dst, id)
//     stays on one engine.
//   - By source: echo requests to a broadcast address or multicast group
//     (Config.Group decides which, e.g. smurf's own test). Smurf's request
//     side counts them per spoofed source, its target. The price: an
//     icmp_flood of one broadcast address or group from many spoofed
//     sources is counted per shard, each engine seeing its share of the
//     sources, so with N workers it needs up to N times the rate to be
//     reported (a flood of a group from one source is unaffected).
//   - Both: a unicast echo request also goes, as a shadow, to its source's
//     engine, where it only registers the request as outstanding
//     (detector.Shadower): the replies come back to the source, and that
//     engine must know they were asked for, or smurf and icmp_flood would
//     take a host's own ping answers for a reflection storm.
//   - Frames without an IP header go to the first worker (they are only
//     counted).
//
// Each engine keeps its own clock from the packets it sees; the dispatcher
// passes packet time to every worker at each engine tick, so attacks on a
// quiet shard still end on time. Events from all workers go through one
// sink behind a mutex (events are rare); their order across shards follows
// the workers' progress, not strictly packet time.
package shard

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
)

// Config configures a Set.
type Config struct {
	// Workers is the number of engines (0: one per CPU).
	Workers int
	// BatchFrames is the most frames a batch carries (default 256).
	BatchFrames int
	// BatchBytes is the size of a batch's frame buffer (default 256 KiB;
	// at least the largest frame).
	BatchBytes int
	// Queue is the number of batches each worker owns: one being filled,
	// the others queued or being worked on (default 8).
	Queue int
	// MaxDelay bounds, in packet time, how long a frame waits in a
	// partly filled batch before it is handed over (default 10 ms): live
	// capture keeps its detection latency at low rates.
	MaxDelay time.Duration
	// Tick is how often, in packet time, every worker is told the
	// current packet time (default 100 ms, the engine's tick).
	Tick time.Duration
	// Group tells whether an echo request goes to a broadcast address or
	// a multicast group, and is routed by its source; nil: IP multicast,
	// 255.255.255.255 and layer-2 broadcast frames only.
	Group func(p *detector.Packet) bool
}

// NewEngine builds worker i's engine, sending its events to sink. Every
// engine needs its own rules.
type NewEngine func(i int, sink detector.Sink) (*detector.Engine, error)

// Set is a dispatcher and its workers. HandleFrame, Advance, Stats and
// Close must be called from one goroutine (the capture loop).
type Set struct {
	cfg      Config
	workers  []*worker
	dec      *detector.Decoder
	pkt      detector.Packet
	nextTick int64
	closed   bool
	sink     lockedSink
}

type worker struct {
	eng  *detector.Engine
	in   chan *batch // filled batches, to the worker
	free chan *batch // empty batches, back to the dispatcher
	cur  *batch
	done chan struct{}
}

// record kinds in a batch.
const (
	kindFrame uint8 = iota
	kindShadow
	kindAdvance
)

type record struct {
	kind    uint8
	lt      detector.LinkType
	off, n  int32
	wireLen int32
	ts      int64 // ns
}

type batch struct {
	buf     []byte
	recs    []record
	first   int64 // packet time of the first record (ns)
	sync    chan struct{}
	closing string // non-empty: close the engine with this reason after the records
}

type lockedSink struct {
	mu   sync.Mutex
	sink detector.Sink
}

func (l *lockedSink) Emit(ev *detector.Event) {
	l.mu.Lock()
	l.sink.Emit(ev)
	l.mu.Unlock()
}

// New starts cfg.Workers workers, each running the engine newEngine builds,
// all sending events to sink.
func New(cfg Config, sink detector.Sink, newEngine NewEngine) (*Set, error) {
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Workers < 1 || cfg.Workers > 1024 {
		return nil, fmt.Errorf("engine.workers: %d is out of range [0, 1024]", cfg.Workers)
	}
	if cfg.BatchFrames <= 0 {
		cfg.BatchFrames = 256
	}
	if cfg.BatchBytes < 262144 {
		cfg.BatchBytes = 262144
	}
	if cfg.Queue < 2 {
		cfg.Queue = 8
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 10 * time.Millisecond
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if sink == nil {
		return nil, errors.New("shard: nil sink")
	}
	s := &Set{cfg: cfg, dec: detector.NewDecoder()}
	s.sink.sink = sink
	for i := 0; i < cfg.Workers; i++ {
		eng, err := newEngine(i, &s.sink)
		if err != nil {
			s.stop()
			return nil, err
		}
		w := &worker{eng: eng, in: make(chan *batch, cfg.Queue), free: make(chan *batch, cfg.Queue), done: make(chan struct{})}
		for j := 0; j < cfg.Queue; j++ {
			w.free <- &batch{buf: make([]byte, 0, cfg.BatchBytes), recs: make([]record, 0, cfg.BatchFrames)}
		}
		w.cur = <-w.free
		s.workers = append(s.workers, w)
		go w.run()
	}
	return s, nil
}

// Workers is the number of engines.
func (s *Set) Workers() int { return len(s.workers) }

func (w *worker) run() {
	defer close(w.done)
	for b := range w.in {
		for i := range b.recs {
			r := &b.recs[i]
			ts := time.Unix(0, r.ts)
			switch r.kind {
			case kindFrame:
				w.eng.HandleFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen))
			case kindShadow:
				w.eng.HandleShadowFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen))
			case kindAdvance:
				w.eng.Advance(ts)
			}
		}
		if b.closing != "" {
			w.eng.Close(b.closing)
		}
		if b.sync != nil {
			b.sync <- struct{}{}
		}
		b.buf, b.recs, b.sync, b.closing = b.buf[:0], b.recs[:0], nil, ""
		w.free <- b
	}
}

// group is the default Config.Group.
func group(p *detector.Packet) bool {
	if p.L2Broadcast || p.Dst.IsMulticast() {
		return true
	}
	return p.Dst.Is4() && p.Dst.As4() == [4]byte{255, 255, 255, 255}
}

func (s *Set) shardOf(h uint64) int {
	return int((h >> 32) * uint64(len(s.workers)) >> 32)
}

// HandleFrame routes one frame (see the package comment). data may be
// reused once it returns.
func (s *Set) HandleFrame(lt detector.LinkType, data []byte, ts time.Time, wireLen int) {
	p := &s.pkt
	t := ts.UnixNano()
	if len(s.workers) == 1 {
		s.add(s.workers[0], kindFrame, lt, data, t, wireLen)
	} else if s.dec.Decode(lt, data, ts, wireLen, p); !p.Src.IsValid() {
		s.add(s.workers[0], kindFrame, lt, data, t, wireLen)
	} else {
		echo := !p.Fragment && p.IsEchoRequest()
		groupFn := s.cfg.Group
		if groupFn == nil {
			groupFn = group
		}
		src := s.shardOf(sketch.HashAddr(p.Src))
		switch {
		case echo && groupFn(p):
			s.add(s.workers[src], kindFrame, lt, data, t, wireLen)
		case echo:
			dst := s.shardOf(sketch.HashAddr(p.Dst))
			s.add(s.workers[dst], kindFrame, lt, data, t, wireLen)
			if src != dst {
				s.add(s.workers[src], kindShadow, lt, data, t, wireLen)
			}
		default:
			s.add(s.workers[s.shardOf(sketch.HashAddr(p.Dst))], kindFrame, lt, data, t, wireLen)
		}
	}
	if t >= s.nextTick {
		if s.nextTick != 0 {
			for _, w := range s.workers {
				s.add(w, kindAdvance, 0, nil, t, 0)
			}
		}
		s.nextTick = t + int64(s.cfg.Tick)
	}
}

// add appends a record to w's current batch, handing the batch over when
// it is full or its first record has waited MaxDelay.
func (s *Set) add(w *worker, kind uint8, lt detector.LinkType, data []byte, t int64, wireLen int) {
	b := w.cur
	if len(b.recs) == cap(b.recs) || len(b.buf)+len(data) > cap(b.buf) {
		s.flush(w)
		b = w.cur
	}
	if len(b.recs) == 0 {
		b.first = t
	}
	off := len(b.buf)
	b.buf = append(b.buf, data...)
	b.recs = append(b.recs, record{kind: kind, lt: lt, off: int32(off), n: int32(len(data)), wireLen: int32(wireLen), ts: t})
	if t-b.first >= int64(s.cfg.MaxDelay) {
		s.flush(w)
	}
}

// flush hands w's current batch to it and takes an empty one (waiting for
// the worker when all are in use: back-pressure, never loss).
func (s *Set) flush(w *worker) {
	if len(w.cur.recs) == 0 && w.cur.sync == nil && w.cur.closing == "" {
		return
	}
	w.in <- w.cur
	w.cur = <-w.free
}

// Advance moves every engine's clock to now (live mode, when traffic
// stops) and hands over what is batched.
func (s *Set) Advance(now time.Time) {
	for _, w := range s.workers {
		s.add(w, kindAdvance, 0, nil, now.UnixNano(), 0)
		s.flush(w)
	}
}

// Sync hands over every batch and waits until the workers have handled
// them.
func (s *Set) Sync() {
	var chans []chan struct{}
	for _, w := range s.workers {
		c := make(chan struct{}, 1)
		w.cur.sync = c
		s.flush(w)
		chans = append(chans, c)
	}
	for _, c := range chans {
		<-c
	}
}

// SetRules gives every engine new rules, for a configuration reload (see
// detector.Engine.SetRules): it waits until the workers have handled what
// is batched, then builds each shard's rules with build and swaps them in
// on this goroutine; the batches handed over afterwards order the swap
// before the workers' next packets. On an error no engine is changed.
func (s *Set) SetRules(build func(shard int) ([]detector.Rule, error)) error {
	sets := make([][]detector.Rule, len(s.workers))
	for i := range s.workers {
		rs, err := build(i)
		if err != nil {
			return err
		}
		sets[i] = rs
	}
	s.Sync()
	for i, w := range s.workers {
		w.eng.SetRules(sets[i]...)
	}
	return nil
}

// Close ends every open attack on every engine with reason and stops the
// workers. The Set must not be used afterwards, except for Stats.
func (s *Set) Close(reason string) {
	if s.closed {
		return
	}
	s.closed = true
	for _, w := range s.workers {
		w.cur.closing = reason
		s.flush(w)
	}
	s.stop()
}

func (s *Set) stop() {
	for _, w := range s.workers {
		close(w.in)
	}
	for _, w := range s.workers {
		<-w.done
	}
}

// Stats sums the engines' counters (tables by name). It waits for the
// workers to catch up first.
func (s *Set) Stats() detector.Stats {
	if !s.closed {
		s.Sync()
	}
	var sum detector.Stats
	tables := map[string]int{}
	for _, w := range s.workers {
		st := w.eng.Stats()
		sum.Frames += st.Frames
		sum.Bytes += st.Bytes
		sum.IPv4 += st.IPv4
		sum.IPv6 += st.IPv6
		sum.ICMP += st.ICMP
		sum.ICMPv6 += st.ICMPv6
		sum.Fragments += st.Fragments
		for i := range st.ICMPv4Types {
			sum.ICMPv4Types[i] += st.ICMPv4Types[i]
			sum.ICMPv6Types[i] += st.ICMPv6Types[i]
		}
		for i := range st.Decode {
			sum.Decode[i] += st.Decode[i]
		}
		sum.AttacksStarted += st.AttacksStarted
		sum.AttacksEnded += st.AttacksEnded
		sum.AttacksDropped += st.AttacksDropped
		sum.PendingEvicted += st.PendingEvicted
		sum.ActiveAttacks += st.ActiveAttacks
		f := &sum.Frag
		f.Len += st.Frag.Len
		f.Cap += st.Frag.Cap
		f.Trains += st.Frag.Trains
		f.Completed += st.Frag.Completed
		f.Evicted += st.Frag.Evicted
		f.Timeouts += st.Frag.Timeouts
		f.Overflows += st.Frag.Overflows
		f.Atomic += st.Frag.Atomic
		for _, t := range st.Tables {
			i, ok := tables[t.Name]
			if !ok {
				i = len(sum.Tables)
				tables[t.Name] = i
				sum.Tables = append(sum.Tables, detector.TableStat{Name: t.Name})
			}
			sum.Tables[i].Len += t.Len
			sum.Tables[i].Cap += t.Cap
			sum.Tables[i].Evicted += t.Evicted
		}
	}
	return sum
}

// Shared wraps a rule that must see the packets of every engine (a
// pipeline observer, not a detection rule) so that all workers may call
// it: calls are serialized by a mutex. Give each engine the same wrapper.
func Shared(r detector.Rule) detector.Rule { return &sharedRule{r: r} }

type sharedRule struct {
	mu sync.Mutex
	r  detector.Rule
}

func (s *sharedRule) Info() detector.RuleInfo { return s.r.Info() }

func (s *sharedRule) Observe(p *detector.Packet, rep detector.Reporter) {
	s.mu.Lock()
	s.r.Observe(p, rep)
	s.mu.Unlock()
}

func (s *sharedRule) Tick(now time.Time, rep detector.Reporter) {
	s.mu.Lock()
	s.r.Tick(now, rep)
	s.mu.Unlock()
}
