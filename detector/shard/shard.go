// Package shard runs several detection engines on several cores. Each
// engine owns a disjoint shard of targets — the hash of the victim's /24
// (IPv4) or /64 (IPv6) picks it — so no lock and no shared map sits on the
// hot path. A dispatcher (the goroutine that calls HandleFrame)
// decodes each frame just enough to route it, copies its bytes into the
// chosen worker's preallocated batch, and hands full batches to the worker
// over a bounded channel; a worker decodes and detects as a single engine
// would. Nothing is allocated per packet.
//
// Routing, and what it means for the rules (each engine has its own rules
// and attack tracker):
//
//   - By destination prefix: everything by default. icmp_flood and the
//     fragment rules are keyed by destination host, icmp_carpet_flood by
//     destination prefix, and a fragment train (src, dst, id) stays on
//     one engine.
//   - By source: echo requests to a broadcast address or multicast group
//     (Config.Group decides which, e.g. smurf's own test). Smurf's request
//     side counts them per spoofed source, its target. The price: an
//     icmp_flood of one broadcast address or group from many spoofed
//     sources is counted per shard, each engine seeing its share of the
//     sources, so with N workers it needs up to N times the rate to be
//     reported (a flood of a group from one source is unaffected).
//   - Both: a unicast echo request (and a timestamp, information or
//     address-mask request) whose source belongs to another engine also
//     goes, as a shadow, to that engine. There smurf registers the request
//     as outstanding (detector.Shadower): the replies come back to the
//     source, and that engine must know they were asked for, or smurf and
//     icmp_flood would take a host's own ping answers for a reflection
//     storm. And the rules keyed by source count it
//     (detector.SourceObserver: icmp_sweep's scanner, icmp_tunnel's
//     client), while on the destination's engine they see
//     Packet.SourceRemote and leave it. So do the packets Config.BySource
//     picks (icmp_error_abuse's forged errors, counted per reporter).
//   - The link's engine: what rules learn of the link — its routers
//     (rogue_ra), the link-layer address of each router and neighbor
//     (icmp_redirect, nd_spoof) — has one home, so that it does not
//     depend on the number of engines. The link's engine is the owner of
//     ff02::/64 (the all-nodes and solicited-node groups, where most ND
//     goes anyway), and it also owns every link-local address and
//     link-scoped group (fe80::/10, ff02::/16), as source and as
//     destination. Every neighbor-discovery message (RS, RA, NS, NA,
//     ICMPv6 redirect) and every ICMPv4 redirect goes there whole,
//     whatever its destination (detector.LinkWhole), so ra_flood's and
//     nd_flood's classification and the rules that read it see the same
//     packets together. An echo reply or an error that arrived unrouted
//     with an Ethernet source (what teaches icmp_redirect a router's
//     link-layer address, detector.LinkCopy) is routed by destination and
//     copied to the link's engine, where only the rules' ObserveLink runs
//     (detector.LinkObserver); on the destination's engine those rules
//     see Packet.LinkRemote and leave the learning. The price: the
//     any-ICMP rate of icmp_flood and icmp_carpet_flood for one unicast
//     host counts the ND messages and redirects to it on the link's
//     engine, apart from its other ICMP (a flood needs to be a flood of
//     one kind or the other); a fragmented ND message to a global
//     address (a train, not whole) is judged on its destination's
//     engine; and the link copies cost the dispatcher a copy and the
//     link's engine a decode per unrouted echo reply or error (with 2
//     workers and one producer, one engine owns every target: no copy).
//     Measured: see the README's Performance section. Sharing the learned
//     tables between engines instead would make what an engine knows at
//     a packet depend on how far the other engines had got: not one
//     engine's output.
//   - Frames without an IP header go to the first worker (they are only
//     counted).
//
// With one producer (no Front) and N > 1 workers, the dispatcher runs the
// first engine itself and that engine owns no targets: one core reads,
// decodes and routes, the other N-1 detect.
//
// Each engine keeps its own clock from the packets it sees; the dispatcher
// passes packet time to every worker at each engine tick, so attacks on a
// quiet shard still end on time.
//
// Events come out in a fixed order whatever the workers' speed: with one
// producer, the dispatcher numbers the frames it routes, each worker holds
// the events its engine emits with the number of the frame (or tick) being
// handled, and the dispatcher hands them to the sink, merged by that
// number (then by worker), once no worker can still emit an earlier one —
// each time it hands a batch over, at Advance, Sync and Close. A replay
// with N workers therefore prints the same events in the same order on
// every run, events raised by packets in packet order. The dispatcher
// starts every engine's clock at the first frame and tells every engine
// the time at each of the engines' own tick boundaries, so each engine
// ticks (ends quiet attacks, sweeps its tables) when one engine alone
// would, and the ends several engines emit for one tick (or Close) are
// merged in one engine's order (detector.EndOrder): the output is one
// engine's. (Left in worker order: two events raised by one frame on two
// engines — its destination's and, as a shadow, its source's.) The cost:
// an event waits until every worker has caught up with the frame that
// raised it (at most the batches queued, or MaxDelay and one Tick of packet
// time at low rates).
// With several fronts there is no one numbering: events go to the sink as
// the workers emit them, behind a mutex.
//
// Several producers: the Set's own HandleFrame is one dispatcher; Front
// hands out more, one per producer goroutine (e.g. one per AF_PACKET
// fanout socket: the kernel spreads flows over the sockets, not victims, so
// every reader must still route each frame to the engine that owns its
// victim). Each front routes exactly as above, with its own decoder and its
// own batch per worker, and all of them send on the workers' channels, so
// a worker sees the frames of one front in order but the fronts'
// batches interleaved: packet time reaching an engine is only
// approximately monotonic (by up to MaxDelay plus the producers' skew).
// The engines clamp packet time to be monotonic, so a late frame counts at
// the engine's current time. Frames that must stay in order relative to
// each other (a flow's requests and replies, a fragment train) stay in
// order when one producer carries all of them — AF_PACKET's flow hash is
// symmetric in the addresses, so a request and its reply go to the same
// socket.
package shard

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	// 255.255.255.255 and layer-2 broadcast frames only. With several
	// fronts it is called from each front's goroutine: it must be safe for
	// concurrent use (smurf's Group only reads its configuration).
	Group func(p *detector.Packet) bool
	// BySource tells whether a packet that is neither an echo request nor
	// a query also goes, as a shadow, to its source's engine, like them
	// (detector.SourceObserver): icmp_error_abuse's errors only a forger
	// sends, which it counts per reporter. nil: none. Like Group it must
	// be safe for concurrent use.
	BySource func(p *detector.Packet) bool
	// Decode configures the fronts' decoders, which route by the
	// innermost packet's addresses; the zero value means
	// detector.DefaultDecodeConfig.
	Decode *detector.DecodeConfig
}

// SourceRouter is implemented by a rule that wants packets other than
// echo requests and queries at their source's engine too (see
// Config.BySource). RoutesBySource must be safe for concurrent use.
type SourceRouter interface {
	RoutesBySource(p *detector.Packet) bool
}

// Grouper is implemented by a rule that defines which echo requests go to
// broadcast addresses and groups (smurf): its Group becomes Config.Group.
// Group must be safe for concurrent use.
type Grouper interface {
	Group(p *detector.Packet) bool
}

// maxFronts bounds the fronts a Set hands out (Front): the workers'
// channels are sized for every batch there may be.
const maxFronts = 1024

// NewEngine builds worker i's engine, sending its events to sink. Every
// engine needs its own rules.
type NewEngine func(i int, sink detector.Sink) (*detector.Engine, error)

// Set is a dispatcher and its workers. HandleFrame, Advance, Sync,
// SetRules, Stats, Front and Close must be called from one goroutine (the
// capture loop, or the goroutine that supervises the fronts' producers).
type Set struct {
	cfg     Config
	workers []*worker
	main    *Front   // the dispatcher behind HandleFrame and Advance
	fronts  []*Front // handed out by Front
	closed  bool
	sink    lockedSink
	// ordered: events are held by the workers and merged by the
	// dispatcher (one producer); Front turns it off.
	ordered bool
	spin    atomic.Bool  // poll before waiting for a batch (Set.spins)
	held    atomic.Int64 // events the workers hold
	merged  []heldEvent  // release's scratch
	// inline: the dispatcher runs worker 0's engine itself, on its own
	// goroutine, and that engine owns no targets (shardOf): with one
	// producer on N cores, one core reads, decodes and routes and N-1
	// detect, so N goroutines are busy rather than N+1. Engine 0 still
	// counts frames without an IP source. Front turns it off: several
	// producers cannot share an engine, and every engine owns a share.
	inline bool
	// link is the link's engine (see the package comment): the owner of
	// ff02::/64, given every link-scoped address and the link-scope
	// traffic (detector.LinkRoute). It moves when inline does.
	link int
	// gauge is the flood gauge the fronts' are made from (the rules'
	// scopes; detector.FloodGauge), no counts of its own.
	gauge *detector.FloodGauge
}

type worker struct {
	idx  int
	set  *Set
	eng  *detector.Engine
	in   chan *batch // filled batches, to the worker
	free chan *batch // empty batches, back to the fronts
	done chan struct{}

	// Event ordering (see the package comment). seq is the number of the
	// record being handled (the worker's goroutine, or the dispatcher's
	// for the inline engine); held the events emitted and not yet
	// released, in emission order; served counts the batches the worker
	// has finished, its events held before. direct: emit at once (several
	// fronts), changed only while the worker is idle.
	seq    uint64
	mu     sync.Mutex
	held   []heldEvent
	served atomic.Uint64
	direct bool

	// The main front waiting for an empty batch (Front.take): it sets
	// freeWait and sleeps on freeWake until the worker has handed back
	// wakeAt batches, or has nothing left to do.
	freeWait atomic.Bool
	freeWake chan struct{}
	wakeAt   int
}

// heldEvent is an event a worker holds until the dispatcher releases it.
type heldEvent struct {
	seq    uint64
	worker int
	ev     *detector.Event
}

// Emit implements detector.Sink for the worker's engine.
func (w *worker) Emit(ev *detector.Event) {
	if w.direct {
		w.set.sink.Emit(ev)
		return
	}
	w.mu.Lock()
	w.held = append(w.held, heldEvent{seq: w.seq, worker: w.idx, ev: ev})
	w.mu.Unlock()
	w.set.held.Add(1)
}

// watermark is the lowest sequence number of an event a worker may still
// emit: the first frame of the oldest batch a worker has not served, of a
// batch being filled, or the frame being routed now.
func (f *Front) watermark() uint64 {
	low := f.seq
	for i, w := range f.s.workers {
		if i == 0 && f.s.inline {
			continue // runs on this goroutine: nothing pending
		}
		ring := f.inFlight[i]
		if served := w.served.Load(); served < f.sent[i] {
			low = min(low, ring[served%uint64(len(ring))])
		} else if b := f.cur[i]; len(b.recs) > 0 {
			low = min(low, b.seq)
		}
	}
	return low
}

// release hands the sink, in order, the events held by the workers that
// no worker can precede any more (all: every event held; the workers must
// have served everything handed over). Called on the dispatcher's
// goroutine, in ordered mode.
func (s *Set) release(all bool) {
	if s.held.Load() == 0 {
		return
	}
	low := ^uint64(0)
	if !all {
		low = s.main.watermark()
	}
	out := s.merged[:0]
	for _, w := range s.workers {
		w.mu.Lock()
		n := 0
		for n < len(w.held) && w.held[n].seq < low {
			n++
		}
		out = append(out, w.held[:n]...)
		rest := copy(w.held, w.held[n:])
		clear(w.held[rest:])
		w.held = w.held[:rest]
		w.mu.Unlock()
	}
	// Each worker's events are in sequence order, and out holds them
	// worker by worker: a stable sort by sequence orders ties by worker.
	slices.SortStableFunc(out, func(a, b heldEvent) int { return cmp.Compare(a.seq, b.seq) })
	for i := 0; i < len(out); {
		j, multi := i+1, false
		for ; j < len(out) && out[j].seq == out[i].seq; j++ {
			multi = multi || out[j].worker != out[i].worker
		}
		if multi {
			oneEngineOrder(out[i:j])
		}
		i = j
	}
	for i := range out {
		s.sink.Emit(out[i].ev)
		out[i].ev = nil
	}
	s.held.Add(-int64(len(out)))
	s.merged = out[:0]
}

// Front is one producer's dispatcher: it routes frames as the package
// comment says, into its own batch per worker, and hands full batches to
// the workers. A Front is used by one goroutine at a time; different
// fronts may be used concurrently. It does not allocate per frame.
type Front struct {
	s        *Set
	counted  detector.Stats // frames the main front counted and dropped (inline)
	cur      []*batch       // the batch being filled, per worker
	dec      *detector.Decoder
	pkt      detector.Packet
	nextTick int64
	// gauge measures floods as one engine would (detector.FloodGauge),
	// on every frame this front routes; mark is its verdict on the frame
	// being routed, which travels with the frame and its shadow. next is
	// a reload's new gauge, taken at the next frame.
	gauge *detector.FloodGauge
	next  atomic.Pointer[gaugeBox]
	mark  detector.Mark
	// seq numbers the frames routed (the main front): the order events
	// are released in. inFlight[i] holds the first sequence number of
	// each batch handed to worker i and not yet served (a ring indexed by
	// the count of batches handed over); sent[i] counts them.
	seq      uint64
	inFlight [][]uint64
	sent     []uint64
	// waits counts the times the main front slept for an empty batch
	// (take).
	waits uint64
}

// record kinds in a batch.
const (
	kindFrame uint8 = iota
	kindSplit       // a frame whose source another worker owns
	kindShadow
	kindAdvance
	kindLink       // a copy for the link's engine (detector.LinkCopy)
	kindLinkRemote // a frame whose link copy went to the link's engine
	// kindSplitLinkRemote: both kindSplit and kindLinkRemote.
	kindSplitLinkRemote
)

type record struct {
	kind    uint8
	mark    detector.Mark // the front's flood verdict (kindFrame, kindSplit, kindShadow)
	lt      detector.LinkType
	off, n  int32
	wireLen int32
	ts      int64  // ns
	seq     uint64 // the dispatcher's number of the frame (event order)
}

type batch struct {
	buf    []byte
	recs   []record
	first  int64  // packet time of the first record (ns)
	seq    uint64 // sequence number of the first record
	reqSeq uint64 // sequence number of the requests below (their events')
	// Requests the worker serves after the records, in this order:
	rules   []detector.Rule // non-nil: swap the engine's rules (SetRules)
	closing string          // non-empty: close the engine with this reason
	stats   *detector.Stats // non-nil: copy the engine's figures here
	sync    chan struct{}   // non-nil: signal when done
}

// idle tells whether b carries nothing to hand over.
func (b *batch) idle() bool {
	return len(b.recs) == 0 && b.rules == nil && b.closing == "" && b.stats == nil && b.sync == nil
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
		cfg.Workers = runtime.GOMAXPROCS(0) // the CPUs this process may use
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
	s := &Set{cfg: cfg, ordered: true}
	s.sink.sink = sink
	for i := 0; i < cfg.Workers; i++ {
		// Every front holds one batch per worker; Queue-1 circulate. The
		// channels hold every batch a worker may ever have, so a worker
		// never blocks returning one.
		w := &worker{idx: i, set: s, in: make(chan *batch, cfg.Queue+maxFronts), free: make(chan *batch, cfg.Queue+maxFronts), done: make(chan struct{}),
			freeWake: make(chan struct{}, 1), wakeAt: max(1, cfg.Queue/2)}
		eng, err := newEngine(i, w)
		if err != nil {
			s.stop()
			return nil, err
		}
		w.eng = eng
		for j := 0; j < cfg.Queue-1; j++ {
			w.free <- s.newBatch()
		}
		s.workers = append(s.workers, w)
		go w.run()
	}
	s.spin.Store(s.spins())
	s.gauge = s.workers[0].eng.NewFloodGauge()
	s.main = s.newFront()
	s.main.inFlight = make([][]uint64, cfg.Workers)
	s.main.sent = make([]uint64, cfg.Workers)
	for i := range s.main.inFlight {
		s.main.inFlight[i] = make([]uint64, cfg.Queue+1)
	}
	s.inline = cfg.Workers > 1
	s.link = s.linkShard()
	return s, nil
}

// Single is a Set of one worker running eng, an engine built elsewhere
// (its events go to its own sink, from the worker's goroutine), so that
// several producers (Front) can feed one engine.
func Single(cfg Config, eng *detector.Engine) (*Set, error) {
	cfg.Workers = 1
	return New(cfg, detector.SinkFunc(func(*detector.Event) {}), func(int, detector.Sink) (*detector.Engine, error) { return eng, nil })
}

func (s *Set) newBatch() *batch {
	return &batch{buf: make([]byte, 0, s.cfg.BatchBytes), recs: make([]record, 0, s.cfg.BatchFrames)}
}

func (s *Set) newFront() *Front {
	dec := detector.NewDecoder()
	if s.cfg.Decode != nil {
		dec = detector.NewDecoderConfig(*s.cfg.Decode)
	}
	f := &Front{s: s, dec: dec, cur: make([]*batch, len(s.workers))}
	f.gauge = s.gauge.Share(1)
	for i := range f.cur {
		f.cur[i] = s.newBatch()
	}
	return f
}

// Front returns a new dispatcher for one more producer goroutine (at most
// 1024 per Set); it allocates a batch per worker. Call it before that
// producer starts; a front may be used from any one goroutine at a time.
// Whatever a front still holds is handed over by Close, which must come
// after every front's producer has returned.
func (s *Set) Front() (*Front, error) {
	if s.closed {
		return nil, errors.New("shard: Front on a closed set")
	}
	if len(s.fronts) >= maxFronts {
		return nil, fmt.Errorf("shard: more than %d fronts", maxFronts)
	}
	if s.ordered {
		// Several producers: no one order of frames. Release what is
		// held and let the workers emit directly, while they are idle.
		s.Sync()
		for _, w := range s.workers {
			w.direct = true
		}
		s.ordered = false
	}
	if s.inline {
		// Several producers: worker 0 goes back to its own goroutine.
		s.main.Flush()
		s.inline = false
		s.link = s.linkShard()
	}
	f := s.newFront()
	s.fronts = append(s.fronts, f)
	s.shareGauge()
	s.spin.Store(s.spins())
	return f, nil
}

// Workers is the number of engines.
func (s *Set) Workers() int { return len(s.workers) }

// spinPolls is how many times a worker about to wait for a batch polls
// its channel first: about 20 µs here (a poll of an empty channel takes
// no lock, ~20 ns on this machine's 2 cores). A goroutine that parks must
// be woken by its peer, with a futex call paid by the peer — when the
// worker waits, the dispatcher is the bottleneck — so the worker polls
// for about the time a wake-up costs, no longer: every poll is CPU burnt.
// (It was 20,000 polls, meant as ~70 µs and measured at ~400 µs: with the
// worker the slower side, the dispatcher polled for most of each batch's
// time, and the replay's CPU came to twice its wall time.) The
// dispatcher does not poll at all (Front.take).
// Only when every busy goroutine has a CPU: with 4 workers on 2 CPUs,
// spinning took the time of a goroutine with work (flood 474 -> 512 ms).
const spinPolls = 1000

// receive takes the next batch from c — when spin, polling it spinPolls
// times before waiting; ok is false when c is closed.
func receive(c chan *batch, spin bool) (b *batch, ok bool) {
	if spin {
		for range spinPolls {
			select {
			case b, ok = <-c:
				return b, ok
			default:
			}
		}
	}
	b, ok = <-c
	return b, ok
}

// take returns an empty batch of worker w for the front, waiting for one
// when the worker has them all. The main front, alone (no other fronts),
// waits without polling until w has handed back half its batches, or has
// run out of work: the worker is the slower side then, and one wake-up
// per wakeAt batches costs it less than one per batch, while polling
// would only burn the dispatcher's core (the worker still holds the other
// half: it never waits for the dispatcher's wake-up). Other fronts,
// which share w.free, take a batch as it comes.
func (f *Front) take(w *worker) *batch {
	if f != f.s.main || len(f.s.fronts) > 0 {
		b, _ := receive(w.free, f.s.spin.Load())
		return b
	}
	for {
		select {
		case b := <-w.free:
			return b
		default:
		}
		w.freeWait.Store(true)
		// Look again: a batch handed back before the worker saw the
		// flag would not wake us.
		select {
		case b := <-w.free:
			w.freeWait.Store(false)
			return b
		default:
		}
		f.waits++
		<-w.freeWake // (a stale wake-up only costs a turn of the loop)
	}
}

// handBack returns an empty batch to the fronts and wakes the main front
// if it waits for one (Front.take) and either wakeAt are free or the
// worker has no batch left to work on (idle).
func (w *worker) handBack(b *batch) {
	w.free <- b
	if w.freeWait.Load() && (len(w.free) >= w.wakeAt || len(w.in) == 0) && w.freeWait.CompareAndSwap(true, false) {
		select {
		case w.freeWake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// spins tells whether goroutines waiting for batches poll first: when the
// busy goroutines are no more than the CPUs Go uses. They are the workers
// (with one producer, the dispatcher runs the first worker's engine
// itself) and the producers of the fronts handed out.
func (s *Set) spins() bool {
	busy := len(s.workers) + len(s.fronts)
	return busy <= runtime.GOMAXPROCS(0)
}

func (w *worker) run() {
	defer close(w.done)
	for {
		b, ok := receive(w.in, w.set.spin.Load())
		if !ok {
			return
		}
		for i := range b.recs {
			r := &b.recs[i]
			ts := time.Unix(0, r.ts)
			w.seq = r.seq
			switch r.kind {
			case kindFrame:
				w.eng.HandleMarkedFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen), false, r.mark)
			case kindSplit:
				w.eng.HandleMarkedFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen), true, r.mark)
			case kindShadow:
				w.eng.HandleMarkedShadowFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen), r.mark)
			case kindLink:
				w.eng.HandleLinkFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen))
			case kindLinkRemote:
				w.eng.HandleLinkRemoteFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen))
			case kindSplitLinkRemote:
				w.eng.HandleSplitLinkRemoteFrame(r.lt, b.buf[r.off:r.off+r.n], ts, int(r.wireLen))
			case kindAdvance:
				w.eng.Advance(ts)
			}
		}
		w.seq = max(w.seq, b.reqSeq)
		if b.rules != nil {
			w.eng.SetRules(b.rules...)
		}
		if b.closing != "" {
			w.eng.Close(b.closing)
		}
		if b.stats != nil {
			*b.stats = w.eng.Stats()
		}
		if b.sync != nil {
			b.sync <- struct{}{}
		}
		// Served: every event of the batch is held (or emitted) before.
		w.served.Add(1)
		b.buf, b.recs, b.rules, b.closing, b.stats, b.sync, b.reqSeq = b.buf[:0], b.recs[:0], nil, "", nil, nil, 0
		w.handBack(b)
	}
}

// endClass ranks the events one engine emits for one frame or tick: the
// ends of quiet attacks (its tick, first), then the ends of a time jump, a
// Close or a reload, then the rest (what the frame raised).
func endClass(ev *detector.Event) int {
	if ev.Phase != detector.PhaseEnd {
		return 2
	}
	switch ev.EndReason {
	case detector.EndQuiet:
		return 0
	case detector.EndTimeJump, detector.EndInputEnd, detector.EndShutdown, detector.EndRuleOff:
		return 1
	}
	return 2 // evicted: raised by the frame
}

// oneEngineOrder puts the events several engines emitted for one frame or
// tick in the order one engine would have: its ends of each kind together,
// in detector.EndOrder, before what the frame raised (left in worker
// order).
func oneEngineOrder(evs []heldEvent) {
	slices.SortStableFunc(evs, func(a, b heldEvent) int {
		ca, cb := endClass(a.ev), endClass(b.ev)
		if ca != cb || ca == 2 {
			return cmp.Compare(ca, cb)
		}
		return detector.EndOrder(a.ev, b.ev)
	})
}

// query tells whether p is an ICMP query request other than echo
// (timestamp, information, address mask), which source-keyed rules (a
// sweep's scanner) also count.
func query(p *detector.Packet) bool {
	if p.IPv6 || !p.HasICMP || p.Fragment {
		return false
	}
	switch p.ICMPType {
	case 13, 15, 17:
		return true
	}
	return false
}

// group is the default Config.Group.
func group(p *detector.Packet) bool {
	if p.L2Broadcast || p.Dst.IsMulticast() {
		return true
	}
	return p.Dst.Is4() && p.Dst.As4() == [4]byte{255, 255, 255, 255}
}

func (s *Set) shardOf(h uint64) int {
	x := h >> 32
	n := uint64(len(s.workers))
	if s.inline {
		// The dispatcher reads, decodes and routes every frame: that is
		// a core's work (reading alone is ~40 % of a one-engine replay).
		// Its own engine (shard 0) owns no targets; the other engines
		// share them. Measured on 2 cores, 4 M-packet captures in tmpfs,
		// --workers 2: giving shard 0 40 % of an even share took 1.10 s
		// on the mix and 1.04 s on the spoofed flood, 20 % 1.05 / 1.02,
		// none 0.82 / 0.71 (one engine: 1.25 / 0.88).
		return 1 + int(x*(n-1)>>32)
	}
	return int(x * n >> 32)
}

// linkShard is the link's engine: the owner of ff02::/64 (the link's
// all-nodes and solicited-node groups) by the routing hash.
func (s *Set) linkShard() int {
	return s.shardOf(sketch.HashPrefix(netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})))
}

// ownerOf is the engine that owns address a: the link's engine for a
// link-local address or a link-scoped group (IPv6 fe80::/10, ff02::/16),
// else the owner of a's /24 or /64.
func (s *Set) ownerOf(a netip.Addr) int {
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return s.link
	}
	return s.shardOf(sketch.HashPrefix(a))
}

// HandleFrame routes one frame (see the package comment) through the Set's
// own front. data may be reused once it returns.
func (s *Set) HandleFrame(lt detector.LinkType, data []byte, ts time.Time, wireLen int) {
	s.main.HandleFrame(lt, data, ts, wireLen)
}

// HandleFrame routes one frame (see the package comment). data may be
// reused once it returns.
func (f *Front) HandleFrame(lt detector.LinkType, data []byte, ts time.Time, wireLen int) {
	s := f.s
	p := &f.pkt
	t := ts.UnixNano()
	f.seq++
	inline := s.inline && f == s.main
	if len(s.workers) == 1 {
		f.add(0, kindFrame, lt, data, t, wireLen)
	} else if reason := f.dec.Decode(lt, data, ts, wireLen, p); inline && !detector.RulesSee(p) {
		// No rule looks at it (TCP, UDP, not IP): counted here, copied
		// nowhere. The engines' clocks move with the ticks below.
		f.counted.CountFrame(p, reason)
	} else if !p.Src.IsValid() {
		f.add(0, kindFrame, lt, data, t, wireLen)
	} else if inline && len(s.workers) == 2 {
		// One engine owns every target (shardOf): no routing to do.
		f.mark = f.flood(p, t)
		f.add(1, kindFrame, lt, data, t, wireLen)
	} else {
		f.mark = f.flood(p, t)
		echo := !p.Fragment && p.IsEchoRequest()
		groupFn := s.cfg.Group
		if groupFn == nil {
			groupFn = group
		}
		// The routing key is the /24 or /64: every host of a prefix is on
		// one engine (icmp_carpet_flood counts a prefix), and a host is on
		// the same engine as a packet's source or destination (smurf's
		// two sides of one victim).
		route := detector.LinkRoute(p)
		src := s.ownerOf(p.Src)
		var dst int
		both := echo || query(p) || s.cfg.BySource != nil && s.cfg.BySource(p)
		switch {
		case route == detector.LinkWhole:
			dst, src = s.link, -1
		case echo && groupFn(p):
			dst = src
		case both:
			dst = s.ownerOf(p.Dst)
			if src != dst {
				f.add(src, kindShadow, lt, data, t, wireLen)
			}
		default:
			dst, src = s.ownerOf(p.Dst), -1
		}
		kind := kindFrame
		if both && src >= 0 && src != dst {
			kind = kindSplit
		}
		if route == detector.LinkCopy && dst != s.link {
			f.add(s.link, kindLink, lt, data, t, wireLen)
			if kind == kindSplit {
				kind = kindSplitLinkRemote // an error BySource picks
			} else {
				kind = kindLinkRemote
			}
		}
		f.add(dst, kind, lt, data, t, wireLen)
	}
	f.mark = detector.MarkNone
	if t >= f.nextTick {
		// The first frame too: every engine's clock, and so its rules'
		// periodic sweeps, start where one engine's would.
		for i := range s.workers {
			f.add(i, kindAdvance, 0, nil, t, 0)
		}
		// On the engines' tick boundaries (detector.Engine truncates
		// packet time to the tick): every engine ticks when one engine
		// alone would have, so attacks end, and rules sweep their
		// tables, at the same packet times whatever the workers.
		f.nextTick = time.Unix(0, t).Truncate(s.cfg.Tick).Add(s.cfg.Tick).UnixNano()
	}
}

// shareGauge hands every front a new gauge of the Set's scopes, each at
// its share of the levels (see detector.FloodGauge.Share), from its next
// frame on.
func (s *Set) shareGauge() {
	s.main.next.Store(&gaugeBox{g: s.gauge.Share(1)})
	for _, f := range s.fronts {
		f.next.Store(&gaugeBox{g: s.gauge.Share(len(s.fronts))})
	}
}

// gaugeBox carries a reload's gauge to a front (nil: no rule gauges).
type gaugeBox struct{ g *detector.FloodGauge }

// flood gauges p, captured at t (Unix ns), as one engine would, and
// returns the verdict its engines take (detector.Mark): with several
// engines a flood's queries are known for what they are on the source's
// engine as on the destination's.
func (f *Front) flood(p *detector.Packet, t int64) detector.Mark {
	if f.next.Load() != nil {
		if b := f.next.Swap(nil); b != nil {
			f.gauge = b.g
		}
	}
	if f.gauge == nil || !detector.IsQuery(p) {
		return detector.MarkClear
	}
	if f.gauge.Observe(p, t) {
		return detector.MarkFlooded
	}
	return detector.MarkClear
}

// add appends a record to worker i's current batch, handing the batch over
// when it is full or its first record has waited MaxDelay.
func (f *Front) add(i int, kind uint8, lt detector.LinkType, data []byte, t int64, wireLen int) {
	if i == 0 && f.s.inline && f == f.s.main {
		w := f.s.workers[0]
		w.seq = f.seq
		e := w.eng
		ts := time.Unix(0, t)
		switch kind {
		case kindFrame:
			e.HandleMarkedFrame(lt, data, ts, wireLen, false, f.mark)
		case kindSplit:
			e.HandleMarkedFrame(lt, data, ts, wireLen, true, f.mark)
		case kindShadow:
			e.HandleMarkedShadowFrame(lt, data, ts, wireLen, f.mark)
		case kindLink:
			e.HandleLinkFrame(lt, data, ts, wireLen)
		case kindLinkRemote:
			e.HandleLinkRemoteFrame(lt, data, ts, wireLen)
		case kindSplitLinkRemote:
			e.HandleSplitLinkRemoteFrame(lt, data, ts, wireLen)
		case kindAdvance:
			e.Advance(ts)
		}
		return
	}
	b := f.cur[i]
	if len(b.recs) == cap(b.recs) || len(b.buf)+len(data) > cap(b.buf) {
		f.flush(i)
		b = f.cur[i]
	}
	if len(b.recs) == 0 {
		b.first, b.seq = t, f.seq
	}
	off := len(b.buf)
	b.buf = append(b.buf, data...)
	b.recs = append(b.recs, record{kind: kind, mark: f.mark, lt: lt, off: int32(off), n: int32(len(data)), wireLen: int32(wireLen), ts: t, seq: f.seq})
	if t-b.first >= int64(f.s.cfg.MaxDelay) {
		f.flush(i)
	}
}

// flush hands worker i the current batch and takes an empty one (waiting
// for the worker when all are in use: back-pressure, never loss).
func (f *Front) flush(i int) {
	b := f.cur[i]
	if b.idle() {
		return
	}
	if len(b.recs) == 0 {
		b.seq = b.reqSeq
	}
	w := f.s.workers[i]
	if f.inFlight != nil {
		ring := f.inFlight[i]
		ring[f.sent[i]%uint64(len(ring))] = b.seq
		f.sent[i]++
	}
	w.in <- b
	f.cur[i] = f.take(w)
	if f.s.ordered && f == f.s.main {
		f.s.release(false)
	}
}

// Flush hands over what the front has batched.
func (f *Front) Flush() {
	for i := range f.cur {
		f.flush(i)
	}
}

// Advance moves every engine's clock to now (live mode, when traffic
// stops) and hands over what the front has batched. With several fronts,
// an idle producer's Advance may move an engine past the packet time of
// frames another front still holds: those count at the engine's time.
func (f *Front) Advance(now time.Time) {
	f.seq++ // its events come after the frames routed before
	for i := range f.cur {
		f.add(i, kindAdvance, 0, nil, now.UnixNano(), 0)
		f.flush(i)
	}
}

// Advance moves every engine's clock to now (live mode, when traffic
// stops) and hands over what is batched in the Set's own front.
func (s *Set) Advance(now time.Time) { s.main.Advance(now) }

// request hands every worker the main front's batch with what set adds
// (rules, stats, closing) and, when wait, waits until each has served it.
func (s *Set) request(wait bool, set func(i int, b *batch)) {
	var chans []chan struct{}
	s.main.seq++ // the requests' events come after every frame routed
	for i := range s.workers {
		b := s.main.cur[i]
		b.reqSeq = s.main.seq
		set(i, b)
		if wait {
			c := make(chan struct{}, 1)
			b.sync = c
			chans = append(chans, c)
		}
		s.main.flush(i)
	}
	for _, c := range chans {
		<-c
	}
	if wait && s.ordered {
		s.release(true) // everything handed over is served
	}
}

// Sync hands over every batch of the Set's own front and waits until the
// workers have handled them (other fronts' batches already handed over
// are handled before).
func (s *Set) Sync() { s.request(true, func(int, *batch) {}) }

// SetRules gives every engine new rules, for a configuration reload (see
// detector.Engine.SetRules): it builds each shard's rules with build, then
// each worker swaps them in after the batches handed over before, and
// SetRules waits until all have. On an error no engine is changed.
func (s *Set) SetRules(build func(shard int) ([]detector.Rule, error)) error {
	sets := make([][]detector.Rule, len(s.workers))
	for i := range s.workers {
		rs, err := build(i)
		if err != nil {
			return err
		}
		if rs == nil {
			rs = []detector.Rule{}
		}
		sets[i] = rs
	}
	s.request(true, func(i int, b *batch) { b.rules = sets[i] })
	// Every front gauges floods by the new rules' levels from its next
	// frame on (a flood under way is measured again within a window).
	s.gauge = detector.NewFloodGauge(sets[0])
	s.shareGauge()
	return nil
}

// Close hands over what every front holds, ends every open attack on every
// engine with reason and stops the workers. The producers using fronts
// must have returned. The Set must not be used afterwards, except for
// Stats.
func (s *Set) Close(reason string) {
	if s.closed {
		return
	}
	s.closed = true
	for _, f := range s.fronts {
		f.Flush()
	}
	s.request(false, func(_ int, b *batch) { b.closing = reason })
	s.stop()
	if s.ordered {
		s.release(true)
	}
}

func (s *Set) stop() {
	for _, w := range s.workers {
		close(w.in)
	}
	for _, w := range s.workers {
		<-w.done
	}
}

// Stats sums the engines' counters (tables by name), leaving out the
// capacity of the tables of an engine that owns no targets (the
// dispatcher's own, with one producer): the room the Set has for targets.
// Each worker reads its engine's figures once it has handled what was
// handed over before (the Set's own front's batches included), so Stats is
// safe while other fronts feed the workers.
func (s *Set) Stats() detector.Stats {
	all := make([]detector.Stats, len(s.workers))
	if s.closed {
		for i, w := range s.workers {
			all[i] = w.eng.Stats()
		}
	} else {
		s.request(true, func(i int, b *batch) { b.stats = &all[i] })
	}
	var sum detector.Stats
	tables := map[string]int{}
	all = append(all, s.main.counted)
	for i := range all {
		st := &all[i]
		// The dispatcher's own engine owns no targets (inline): its
		// tables never fill, and their room is no room of the Set's.
		ownsNone := s.inline && i == 0
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
		if !ownsNone {
			f.Cap += st.Frag.Cap
		}
		f.Trains += st.Frag.Trains
		f.Completed += st.Frag.Completed
		f.Evicted += st.Frag.Evicted
		f.Timeouts += st.Frag.Timeouts
		f.Overflows += st.Frag.Overflows
		f.Atomic += st.Frag.Atomic
		sum.Reassembly.Add(st.Reassembly, !ownsNone)
		for _, t := range st.Tables {
			i, ok := tables[t.Name]
			if !ok {
				i = len(sum.Tables)
				tables[t.Name] = i
				sum.Tables = append(sum.Tables, detector.TableStat{Name: t.Name})
			}
			sum.Tables[i].Len += t.Len
			if !ownsNone {
				sum.Tables[i].Cap += t.Cap
			}
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
