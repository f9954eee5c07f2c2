package detector

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector/prefix"
)

// Rule is one detection rule. The engine calls Observe for every ICMP or
// ICMPv6 packet and every IP fragment, in packet-time order, and Tick at
// each engine tick. Rules never read the wall clock: now and p.Time are
// packet time. A rule owns its state and must keep it bounded.
type Rule interface {
	Info() RuleInfo
	Observe(p *Packet, rep Reporter)
	Tick(now time.Time, rep Reporter)
}

// Classifier is implemented by rules that recognise, before any rule counts
// a packet, that it belongs to something they report or explain. The
// engine runs the Classify of every enabled Classifier, in rule order, on
// each packet the rules will see, before any rule's Observe; a classifier
// writes its verdict into p.Class, which every rule may read. This is how
// related rules split the work without knowing each other: a reflection
// storm that smurf owns is not also an icmp_flood, and the echo replies a
// host asked for are no flood of it. Classify runs exactly once per packet
// and right before that packet's Observe calls, so a classifier may keep
// what it worked out for its own Observe. It must not report and must not
// allocate.
type Classifier interface {
	Classify(p *Packet)
}

// Class is the classification step's verdict on a packet (see Classifier).
// The engine clears it for every packet.
type Class struct {
	// Owner is the name of the rule that reports this packet as evidence
	// of its own attack ("" if none). Rate rules that would count it
	// otherwise leave it out, so one attack is reported once, under the
	// name that says most about it.
	Owner string
	// Solicited is set on an echo reply that answers an echo request its
	// receiver sent (same host and echo identifier, within the
	// classifier's time-out): a reply someone asked for.
	Solicited bool
	// Sweeping is set on a query (echo, timestamp, ...) whose source is
	// probing many distinct hosts right now (a host sweep): its probes of
	// x.y.z.255 are a scanner's, not a reflection attack in a victim's
	// name.
	Sweeping bool
	// Flooded is set on a query (echo, timestamp, information, address
	// mask request) whose destination host or destination prefix is under
	// a request flood right now (see FloodGauge): it belongs to the flood
	// or the carpet, so rules keyed by its source (a sweep's scanner, a
	// tunnel's client) leave it to icmp_flood and icmp_carpet_flood, and
	// a spoofed flood's senders do not become a thousand attacks.
	Flooded bool
}

// Describer is implemented by rules that add their own context to the
// attack events of a target (e.g. the broadcast addresses a Smurf used).
// It is called only when an event is emitted, never per packet.
type Describer interface {
	Describe(target netip.Addr, extra map[string]any)
}

// TableReporter is implemented by rules that keep bounded tables, so the
// engine can report their sizes and evictions.
type TableReporter interface {
	Tables() []TableStat
}

// Warmer is implemented by rules that keep large fixed arrays read before
// they are written (smurf's outstanding requests, icmp_sweep's admission
// cells). The engine calls Warm once, right before the rule's first packet
// (Classify, Observe, Shadow or ObserveSource), and the rule makes that
// memory resident and writable then (table.Prefault), so its hot path
// takes no page fault whose first touch is a read. An engine that never
// gets a packet — an idle shard on a many-core machine, the dispatcher's
// own engine — never pays for its arrays. Warm must not report.
type Warmer interface {
	Warm()
}

// Flusher is implemented by rules that hold evidence back for a moment
// before they report it (icmp_error_abuse waits up to a second to see
// whether a forged error is the first of a forger's spray over many
// receivers, one attack, or an attack on one host). The engine calls
// Flush before it ends attacks at once — Close, a jump of packet time, a
// rule reload — and the rule reports what it holds then.
type Flusher interface {
	Flush(rep Reporter)
}

// TableStat describes one bounded state table.
type TableStat struct {
	Name     string // e.g. "icmp_flood.targets"
	Len, Cap int
	Evicted  uint64
}

// Level is how a target's measured rate stands against a rule's thresholds.
type Level uint8

// Levels, with hysteresis: an attack starts at LevelFire and lasts while the
// rule keeps reporting LevelSustain or more.
const (
	LevelQuiet   Level = iota // below the stop level
	LevelSustain              // at or above the stop level, below the start level
	LevelFire                 // at or above the start level
)

// Measure is what a rate rule measured for a target when it reports a hit.
type Measure struct {
	Level     Level
	PPS, BPS  float64
	Window    time.Duration
	Threshold float64 // the start level in packets/s, for the alert
	// WindowPackets and WindowBytes are what the rule's window holds,
	// this packet included; they seed a new attack's totals.
	WindowPackets, WindowBytes uint64
}

// Reporter is how a rule reports to the engine. It is a small value the
// engine passes to Observe and Tick (three words: it is passed to every
// rule for every packet, so it stays small and holds no interface).
type Reporter struct {
	e    *Engine
	rule int
	// scope, when set, limits the targets reported (Within).
	scope *Scope
}

// Scope is a set of targets (see Reporter.Within): those whose most
// specific network in Owners maps to Index. (A rule run with other
// settings for some networks: Owners maps each override's networks to its
// instance, Index is one instance's, -1 the rule's own settings.)
type Scope struct {
	Owners *prefix.Table[int]
	Index  int
}

// Owns tells whether target belongs to the scope.
func (s *Scope) Owns(target netip.Addr) bool {
	i, ok := s.Owners.Lookup(target)
	if !ok {
		i = -1
	}
	return i == s.Index
}

// Within returns a Reporter that drops the hits and alerts of targets s
// does not own: how one rule runs with other settings for some networks
// (rules.<rule>.overrides), each set of settings reporting its own
// targets only.
func (r Reporter) Within(s *Scope) Reporter {
	r.scope = s
	return r
}

// Hit reports that p, a packet toward target, counts for the rule at level
// m.Level. Rules call it only for levels LevelSustain and above. The engine
// turns hits into one start, rate-limited updates and one end per attack.
// m is read in place during the call and not kept: a rule may pass a
// Measure it reuses. (By pointer because a rule hitting on every packet of
// a flood fills m field by field; passed by value it was copied in 16-byte
// moves over those 8-byte stores, a store-forwarding stall per packet —
// BenchmarkEngineFlood shows it.)
func (r Reporter) Hit(target netip.Addr, p *Packet, m *Measure) {
	r.e.tracker.hit(r.rule, r.scope, target, p, m) // inlined: the tracker checks the scope
}

// Alert reports a one-shot finding (e.g. one oversized reassembly): the
// engine emits a single start event for it at once. extra is the rule's
// context for the alert and becomes the event's; it may be nil.
func (r Reporter) Alert(target netip.Addr, p *Packet, extra map[string]any) {
	if r.scope != nil && !r.scope.Owns(target) {
		return
	}
	r.e.tracker.alert(r.rule, target, p, extra)
}
