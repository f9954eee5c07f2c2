package detector

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector/frag"
	"github.com/icmpids/icmpids/detector/prefix"
	"github.com/icmpids/icmpids/detector/reasm"
)

// Sink receives attack events. Emit is called on the engine's goroutine and
// must not block for long: real outputs sit behind a bounded queue. The
// sink owns the Event it is given.
type Sink interface {
	Emit(ev *Event)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ev *Event)

// Emit calls f(ev).
func (f SinkFunc) Emit(ev *Event) { f(ev) }

// Config holds the engine's settings: timing of the attack lifecycle and
// the cap on tracked attacks.
type Config struct {
	// Tick is the packet-time interval at which rules and the attack
	// tracker run their periodic work (ending quiet attacks).
	Tick time.Duration `mapstructure:"tick"`
	// HoldTime is how long an attack must stay below its stop level before
	// it ends.
	HoldTime time.Duration `mapstructure:"hold_time"`
	// UpdateInterval is the least packet time between two update events of
	// one attack.
	UpdateInterval time.Duration `mapstructure:"update_interval"`
	// MaxAttacks caps the (rule, target) pairs tracked at once, pending and
	// active; pending ones are evicted first, active ones never.
	MaxAttacks int `mapstructure:"max_attacks"`
	// Frag configures fragment-train tracking (engine.frag.*).
	Frag frag.Config `mapstructure:"frag"`
	// Reassembly configures the reassembly of fragmented ND messages and
	// tunnel carriers (engine.reassembly.*; see reassemble.go).
	Reassembly reasm.Config `mapstructure:"reassembly"`
	// Decode configures the encapsulation decoders; the configuration
	// file sets it as the top-level decode: block.
	Decode DecodeConfig `mapstructure:"-"`
	// IgnoreSources are the networks whose packets no rule sees (the
	// configuration's top-level ignore_sources: monitoring servers); the
	// engine still counts them. Nil costs nothing per packet.
	IgnoreSources []netip.Prefix `mapstructure:"-"`
	// Workers is how many engines share the work, each owning a shard of
	// targets (detector/shard); 0 means one per CPU. The command wires
	// them; an Engine itself is always one.
	Workers int `mapstructure:"workers"`
}

// DefaultConfig returns the engine defaults.
func DefaultConfig() Config {
	return Config{
		Tick:           100 * time.Millisecond,
		HoldTime:       10 * time.Second,
		UpdateInterval: 10 * time.Second,
		MaxAttacks:     4096,
		Frag:           frag.DefaultConfig(),
		Reassembly:     reasm.DefaultConfig(),
		Decode:         DefaultDecodeConfig(),
		Workers:        0,
	}
}

// Validate checks the settings; errors name the configuration key.
func (c Config) Validate() error {
	var errs []error
	if c.Tick <= 0 || c.Tick > time.Minute {
		errs = append(errs, fmt.Errorf("engine.tick: %v is out of range (0, 1m]", c.Tick))
	}
	if c.HoldTime < c.Tick {
		errs = append(errs, fmt.Errorf("engine.hold_time: %v must be at least engine.tick (%v)", c.HoldTime, c.Tick))
	}
	if c.UpdateInterval <= 0 {
		errs = append(errs, fmt.Errorf("engine.update_interval: %v must be positive", c.UpdateInterval))
	}
	if c.MaxAttacks < 1 || c.MaxAttacks > 1<<20 {
		errs = append(errs, fmt.Errorf("engine.max_attacks: %d is out of range [1, 1048576]", c.MaxAttacks))
	}
	if c.Workers < 0 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("engine.workers: %d is out of range [0, 1024] (0: one per CPU)", c.Workers))
	}
	if err := c.Frag.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Reassembly.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Decode.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats are the engine's counters.
type Stats struct {
	Frames    uint64 // frames handed to the engine
	Bytes     uint64 // their wire bytes
	IPv4      uint64 // frames with an IPv4 header
	IPv6      uint64 // frames with an IPv6 header
	ICMP      uint64 // ICMPv4 packets (fragments of ICMP included)
	ICMPv6    uint64 // ICMPv6 packets (fragments included)
	Fragments uint64 // IP fragments
	// ICMPv4Types and ICMPv6Types count ICMP messages by type (index: the
	// ICMP type): packets whose ICMP header was decoded, so a fragmented
	// message counts once, by its first fragment.
	ICMPv4Types, ICMPv6Types [256]uint64
	// Decode counts frames by decode outcome (index: Reason).
	Decode [NumReasons]uint64
	// AttacksStarted and AttacksEnded count start and end events (one-shot
	// alerts count as started).
	AttacksStarted, AttacksEnded uint64
	// AttacksDropped counts hits lost because the attack table was full of
	// active attacks; PendingEvicted counts pending attacks pushed out.
	AttacksDropped, PendingEvicted uint64
	// ActiveAttacks is the number of attacks open now.
	ActiveAttacks int
	// Frag is the fragment tracker's table: trains held, cap, evictions,
	// timeouts (also listed in Tables as "frag.trains").
	Frag frag.Stats
	// Reassembly is the reassembly pool's: trains held, cap, completed,
	// evicted, timed out, given up (also in Tables as "reasm.trains").
	Reassembly reasm.Stats
	// Tables lists the engine's and the rules' bounded tables.
	Tables []TableStat
}

// DecodeErrors is the number of frames that failed to decode, not-IP frames
// excluded.
func (s *Stats) DecodeErrors() uint64 {
	var n uint64
	for r := ReasonUnsupportedLink; r < NumReasons; r++ {
		n += s.Decode[r]
	}
	return n
}

// Engine is the detection engine for one packet stream. It is not safe for
// concurrent use: one goroutine feeds it.
type Engine struct {
	cfg      Config
	dec      *Decoder
	rules    []Rule
	dispatch *dispatch // which rules see which packets (Interest)
	hold     []int64   // each rule's hold time (ns)
	tracker  *tracker
	frag     *frag.Tracker
	reasm    *reasm.Pool
	sink     Sink
	now      time.Time
	nextTick time.Time
	// nowNs and nextTickNs are now and nextTick in Unix nanoseconds, what
	// the per-packet path compares; clockSet tells that now is set.
	nowNs, nextTickNs int64
	clockSet          bool
	// cold are the rules whose Warm is still to be called, before the
	// next packet any rule sees.
	cold []Warmer
	// shadows are the rules a shadow frame is handed to, in rule order;
	// links those a link copy is (HandleLinkFrame).
	shadows []shadowRule
	links   []linkRule
	// fleetSources and fleetJudges are the rules that report to a fleet
	// and judge its sums (SetFleet, ObserveFleet).
	fleetSources []fleetSource
	fleetJudges  []fleetJudge
	// gauge measures the rules' flood scopes (nil: none); mark is the
	// verdict a dispatcher gave the frame being handled (MarkNone: the
	// engine gauges it itself).
	gauge *FloodGauge
	mark  Mark
	// ignore holds Config.IgnoreSources.
	ignore prefix.Table[struct{}]
	pkt    Packet
	stats  Stats

	// anomalies are the rules that see the frames the decoder gives up on.
	anomalies []anomalyRule
	fleet     *fleetState // SetFleet's reporting; nil: none
}

// New returns an engine that runs rules and sends attack events to sink.
func New(cfg Config, sink Sink, rules ...Rule) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("detector: nil sink")
	}
	e := &Engine{cfg: cfg, dec: NewDecoderConfig(cfg.Decode), sink: sink}
	for _, p := range cfg.IgnoreSources {
		e.ignore.Add(p, struct{}{})
	}
	e.setRules(rules)
	e.tracker = newTracker(e)
	e.frag = frag.New(cfg.Frag)
	e.reasm = reasm.New(cfg.Reassembly)
	return e, nil
}

// Now is the engine's clock: the latest packet time (or tick) seen.
func (e *Engine) Now() time.Time { return e.now }

// HandleFrame decodes one frame of link type lt, captured at ts with wire
// length wireLen, and runs the rules on it. data may be reused by the
// caller once HandleFrame returns. It does not allocate unless an event is
// emitted.
func (e *Engine) HandleFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	e.handleFrame(lt, data, ts, wireLen, false)
}

// HandleSplitFrame is HandleFrame for a frame whose source is owned by
// another engine (detector/shard): the rules see p.SourceRemote set, and
// leave their source-keyed work to that engine, which gets the frame
// through HandleShadowFrame.
func (e *Engine) HandleSplitFrame(lt LinkType, data []byte, ts time.Time, wireLen int) {
	e.handleFrame(lt, data, ts, wireLen, true)
}

// Mark is a dispatcher's verdict on a frame (detector/shard), worked out
// where every frame is seen, so that several engines classify as one
// engine would: an engine handed a Mark takes it instead of gauging the
// frame itself (see FloodGauge).
type Mark uint8

// Marks.
const (
	MarkNone    Mark = iota // no verdict: the engine gauges the frame
	MarkClear               // not a flooded destination's query
	MarkFlooded             // a query to a destination flooded now
)

// HandleMarkedFrame is HandleFrame (srcRemote: HandleSplitFrame) for a
// frame a dispatcher has gauged: m is its verdict.
func (e *Engine) HandleMarkedFrame(lt LinkType, data []byte, ts time.Time, wireLen int, srcRemote bool, m Mark) {
	e.mark = m
	e.handleFrame(lt, data, ts, wireLen, srcRemote)
	e.mark = MarkNone
}

// NewFloodGauge returns a gauge that measures as this engine's rules do,
// for a dispatcher to mark frames with (HandleMarkedFrame).
func (e *Engine) NewFloodGauge() *FloodGauge { return NewFloodGauge(e.rules) }

func (e *Engine) handleFrame(lt LinkType, data []byte, ts time.Time, wireLen int, srcRemote bool) {
	p := &e.pkt
	reason := e.dec.Decode(lt, data, ts, wireLen, p)
	p.SourceRemote = srcRemote // (LinkRemote: false, as Decode left it)
	e.handleDecoded(p, reason)
	if p.Fragment { // (lt and data are the decoder's: no spill across the calls)
		e.reassemble(p)
	}
}

func (e *Engine) handleDecoded(p *Packet, reason Reason) {
	e.stats.Frames++
	e.stats.Bytes += uint64(p.WireLen)
	e.stats.Decode[reason]++
	tn := p.Time.UnixNano()
	e.advance(p.Time, tn)
	if !p.Src.IsValid() {
		if p.GaveUp != AnomalyNone && e.anomalies != nil {
			e.observeAnomaly(p) // see anomaly.go
		}
		return // no IP header: nothing for the other rules
	}
	// A packet whose IP header decoded still reaches the rules when what
	// lies above it is cut short (snaplen) or malformed: its addresses and
	// fragment fields are sound, and fragment attacks live there.
	e.handle(p, tn)
}

// CountFrame adds to s a frame that no rule looks at (no IP header, or
// IP carrying neither ICMP nor a fragment), as an engine counts one:
// frames, bytes, decode outcome, IP family. Dispatchers that drop such
// frames before any engine keep their figures this way.
func (s *Stats) CountFrame(p *Packet, reason Reason) {
	s.Frames++
	s.Bytes += uint64(p.WireLen)
	s.Decode[reason]++
	if !p.Src.IsValid() {
		return
	}
	if p.IPv6 {
		s.IPv6++
	} else {
		s.IPv4++
	}
}

// RulesSee tells whether the engine would hand p to any rule: an ICMP or
// ICMPv6 packet, an IP fragment, or a frame the decoder gave up on
// (AnomalyObserver).
func RulesSee(p *Packet) bool {
	return p.Src.IsValid() && (p.Fragment || p.Proto == ProtoICMPv4 || p.Proto == ProtoICMPv6) || p.GaveUp != AnomalyNone
}

// HandlePacket runs the rules on an already decoded packet (p.Time is its
// packet time; the engine sets p.TimeNs and p.Class). Rules see only
// ICMP/ICMPv6 packets and IP fragments: other traffic leaves here at the
// cost of a counter.
func (e *Engine) HandlePacket(p *Packet) {
	tn := p.Time.UnixNano()
	e.advance(p.Time, tn)
	// p may be a caller's Packet reused with a new Src: what the engine
	// and the rules fill starts afresh, as Decode leaves it.
	p.srcHashed, p.dstHashed = false, false
	p.ndDone = false
	p.Class = Class{}
	p.Frag = frag.Verdict{}
	e.handle(p, tn)
}

// handle is HandlePacket once the clock has moved to p.Time (tn in Unix
// ns), for a packet whose engine-filled fields (Class, Frag, the cached
// hashes and ND options) are zero: fresh from Decode, or reset by
// HandlePacket (clearing them again here cost every frame ~13
// instructions).
func (e *Engine) handle(p *Packet, tn int64) {
	raw := tn
	if tn < e.nowNs {
		p.Time, tn = e.now, e.nowNs // rules see a monotonic clock
	}
	p.TimeNs = tn
	if p.IPv6 {
		e.stats.IPv6++
	} else {
		e.stats.IPv4++
	}
	if p.Fragment {
		e.stats.Fragments++
		e.observeFragment(p) // fills p.Frag
	}
	switch p.Proto {
	case ProtoICMPv4:
		e.stats.ICMP++
	case ProtoICMPv6:
		e.stats.ICMPv6++
	default:
		if !p.Fragment {
			return
		}
	}
	if p.HasICMP { // per-type counters, and the flood gauge for a query
		if p.IPv6 {
			e.stats.ICMPv6Types[p.ICMPType]++
		} else {
			e.stats.ICMPv4Types[p.ICMPType]++
		}
		// The flood verdict: the dispatcher's mark, or the engine's own
		// gauge. (A packet the engine reassembled is no dispatcher's
		// frame: it is gauged nowhere, with one engine or several.)
		if e.mark != MarkNone {
			p.Class.Flooded = e.mark == MarkFlooded
		} else if e.gauge != nil && !p.Reassembled && IsQuery(p) {
			p.Class.Flooded = e.gauge.Observe(p, raw)
		}
	} else if e.mark == MarkFlooded {
		p.Class.Flooded = true // (a dispatcher marks queries only)
	}
	if e.ignore.Len() != 0 && e.ignored(p) { // free without ignore_sources
		return
	}
	if e.cold != nil {
		e.warm()
	}
	rules, classifiers := e.dispatch.of(p)
	for _, c := range classifiers {
		c.Classify(p)
	}
	for _, i := range rules {
		e.rules[i].Observe(p, Reporter{e: e, rule: i})
	}
}

// ignored tells whether p comes from an ignore_sources network.
func (e *Engine) ignored(p *Packet) bool {
	_, ok := e.ignore.Lookup(p.Src)
	return ok
}

// warm calls Warm on the rules that have not had it (see Warmer).
func (e *Engine) warm() {
	for _, w := range e.cold {
		w.Warm()
	}
	e.cold = nil
}

// setRules installs rules and works out which packets each one sees.
func (e *Engine) setRules(rules []Rule) {
	e.rules, e.hold = rules, make([]int64, len(rules))
	e.dispatch = newDispatch(rules)
	e.gauge = NewFloodGauge(rules)
	e.cold, e.shadows, e.links, e.anomalies = nil, nil, nil, nil
	e.fleetSources, e.fleetJudges = nil, nil
	for i, r := range rules {
		if fs, ok := r.(FleetSource); ok && fs.FleetSlotWidth() > 0 {
			e.fleetSources = append(e.fleetSources, fleetSource{rule: i, src: fs, width: int64(fs.FleetSlotWidth())})
		}
		if j, ok := r.(FleetJudge); ok {
			e.fleetJudges = append(e.fleetJudges, fleetJudge{rule: i, name: r.Info().Name, judge: j})
		}
		if l, ok := r.(LinkObserver); ok {
			e.links = append(e.links, linkRule{rule: i, obs: l})
		}
		if a, ok := r.(AnomalyObserver); ok {
			e.anomalies = append(e.anomalies, anomalyRule{rule: i, obs: a})
		}
		if w, ok := r.(Warmer); ok {
			e.cold = append(e.cold, w)
		}
		sh, _ := r.(Shadower)
		so, _ := r.(SourceObserver)
		if sh != nil || so != nil {
			e.shadows = append(e.shadows, shadowRule{rule: i, shadow: sh, source: so})
		}
	}
	for i, r := range rules {
		e.hold[i] = int64(e.cfg.HoldTime)
		if h := r.Info().HoldTime; h > 0 {
			e.hold[i] = int64(h)
		}
	}
}

// SetRules replaces the engine's rules, for a configuration reload. Open
// and pending attacks carry on under the new rule of the same name; the
// active attacks of a rule that is gone end at once with EndRuleOff. The
// new rules start with empty state: a flood under way is measured again
// within one window, well inside the hold time, so its attack goes on.
// Call it from the goroutine that feeds the engine.
func (e *Engine) SetRules(rules ...Rule) {
	byName := make(map[string]int, len(rules))
	for i, r := range rules {
		byName[r.Info().Name] = i
	}
	e.flush()
	e.tracker.remap(func(old int) (int, bool) {
		i, ok := byName[e.rules[old].Info().Name]
		return i, ok
	}, EndRuleOff)
	e.setRules(rules)
}

// Advance moves the engine's clock to now without a packet (live mode calls
// it from the wall clock when traffic stops) and runs due ticks, so quiet
// attacks end on time.
func (e *Engine) Advance(now time.Time) { e.advance(now, now.UnixNano()) }

// advance moves the clock to t (tn: t in Unix ns). The per-packet path
// compares int64s; time.Time arithmetic runs only when a tick is due.
func (e *Engine) advance(t time.Time, tn int64) {
	if !e.clockSet {
		e.setClock(t, tn)
		return
	}
	if tn < e.nowNs {
		if e.nowNs-tn > int64(e.cfg.HoldTime) {
			// A jump back in time (a new capture file, a clock step):
			// close what is open and restart the clock there.
			e.flush()
			e.tracker.closeAll(EndTimeJump)
			e.frag.Reset()
			e.reasm.Reset()
			e.setClock(t, tn)
		}
		return
	}
	e.now, e.nowNs = t, tn
	if tn >= e.nextTickNs {
		e.tick()
		e.setNextTick(t)
	}
}

// setClock sets the clock to t (tn in Unix ns) and the next tick after it.
func (e *Engine) setClock(t time.Time, tn int64) {
	e.now, e.nowNs, e.clockSet = t, tn, !t.IsZero()
	e.setNextTick(t)
}

func (e *Engine) setNextTick(t time.Time) {
	e.nextTick = t.Truncate(e.cfg.Tick).Add(e.cfg.Tick)
	e.nextTickNs = e.nextTick.UnixNano()
}

// tick runs the periodic work: attacks that went quiet end first, while
// the rules still hold the state their end events describe (a jump of the
// clock would otherwise let a rule's sweep drop it first), then the rules
// run their own periodic work.
func (e *Engine) tick() {
	e.tracker.expire(e.nowNs)
	for i, r := range e.rules {
		r.Tick(e.now, Reporter{e: e, rule: i})
	}
	e.frag.Expire(e.nowNs)
	e.reasm.Expire(e.nowNs)
	if e.fleet != nil {
		e.fleetTick()
	}
}

// Close ends every open attack with an end event giving reason (EndInputEnd
// at the end of a replay, EndShutdown when a live sensor stops).
func (e *Engine) Close(reason string) {
	if e.clockSet {
		e.tick()
		e.flush()
		if e.fleet != nil {
			e.fleetFlush()
		}
	}
	e.tracker.closeAll(reason)
}

// flush has the rules that hold evidence back report it (see Flusher).
func (e *Engine) flush() {
	for i, r := range e.rules {
		if f, ok := r.(Flusher); ok {
			f.Flush(Reporter{e: e, rule: i})
		}
	}
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.ActiveAttacks = e.tracker.active()
	s.Frag = e.frag.Stats()
	s.Reassembly = e.reasm.Stats()
	s.Tables = []TableStat{{Name: "frag.trains", Len: s.Frag.Len, Cap: s.Frag.Cap, Evicted: s.Frag.Evicted},
		{Name: "reasm.trains", Len: s.Reassembly.Len, Cap: s.Reassembly.Cap, Evicted: s.Reassembly.Evicted}}
	for _, r := range e.rules {
		if tr, ok := r.(TableReporter); ok {
			s.Tables = append(s.Tables, tr.Tables()...)
		}
	}
	return s
}

// --- fragment tracking ---

// observeFragment runs the fragment tracker on p and records its verdict
// in p.Frag. It does not allocate in steady state.
func (e *Engine) observeFragment(p *Packet) {
	f := frag.Fragment{
		Time:            p.TimeNs,
		IPv6:            p.IPv6,
		Src:             p.Src,
		Dst:             p.Dst,
		ID:              p.FragID,
		Proto:           p.Proto,
		Offset:          p.FragOffset,
		Len:             p.FragLen,
		More:            p.MoreFragments,
		HeaderLen:       p.HeaderLen,
		UpperOff:        p.FragUpperOff,
		ChainIncomplete: p.FragChainIncomplete,
		Sum:             p.FragSum,
		HasICMP:         p.HasICMP,
		ICMPType:        p.ICMPType,
		Echo:            p.IsEchoRequest(),
	}
	p.Frag = e.frag.Observe(&f)
}
