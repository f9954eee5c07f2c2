package detector

import (
	"net/netip"
	"slices"
	"time"

	"github.com/icmpids/icmpids/detector/sketch"
)

// topReported is how many top sources and ICMP types an event lists.
const topReported = 5

// topDoorBits sizes the tracker's doorkeeper of top sources: 2^14 cells
// (64 KiB). A source's fingerprint survives about that many hits of new
// sources (all attacks together) before another overwrites it, so a real
// source sending one packet in a few thousand of a spoofed flood is
// admitted at its second or third.
const topDoorBits = 14

type attackKey struct {
	rule   int
	target netip.Addr
}

// attack is the tracker's state for one (rule, target): pending while the
// rate is above the stop level but has not crossed the start level yet,
// active from the start event to the end event.
type attack struct {
	active     bool
	first      time.Time // first hit (pending or active)
	firstNs    int64     // first in Unix ns
	started    time.Time // start event time
	lastNs     int64     // the last hit in Unix ns (what expiry and eviction compare; lastTime is its time)
	nextEmitNs int64     // an active attack's next update is due at this packet time (its last start or update + the update interval)
	packets    uint64    // packets in the attack, seeded with the rule's window
	bytes      uint64
	peakPPS    float64
	peakBPS    float64
	// What events report of the rule's last measure.
	pps, bps   float64
	window     time.Duration
	threshold  float64
	lastPacket packetSummary
	// firstSource is the attack's source in its first event (src_ip on
	// every phase).
	firstSource netip.Addr
	sources     sketch.HLL
	// fleet: the attack is a correlator's, of the fleet's sums, whose
	// distinct sources are fleetSources (the union of the sensors').
	fleet        bool
	fleetSources sketch.MiniHLL
	top          sketch.TopK[netip.Addr]
	types        sketch.TopK[uint16]
	// runKey and runN: the ICMP type and code (type<<8 | code) of the
	// attack's last packets, runN of them in a row not yet in types (a
	// flood repeats one type: counted there in one go when the type
	// changes or an event reads types; see countType).
	runKey uint32 // 1<<16 | the type and code; 0: no run
	runN   uint64
	// salt keys the attack's sources in the tracker's doorkeeper: made of
	// the attack's first packet time (ns) and its rule and target, so one
	// source is a new key in each attack, and a forger who cannot know
	// the capture's timestamps to the nanosecond cannot aim spoofed
	// sources at a real source's cell to keep it out of the top.
	salt uint64
}

// packetSummary is what an event needs of its triggering packet.
type packetSummary struct {
	src, dst netip.Addr
	proto    uint8
	hasICMP  bool
	icmpType uint8
	icmpCode uint8
	nvlan    uint8
	vlans    [maxVLANsKept]uint16
	tunnel   Tunnel
}

// set records p. Field by field on purpose: a whole-struct copy through
// a temporary is written in pieces and read back in 16-byte moves, which
// defeats store-to-load forwarding on every hit. hit writes the common
// fields itself (this is too large to inline) when p has none of what
// setRest records.
func (s *packetSummary) set(p *Packet) {
	s.src, s.dst = p.Src, p.Dst
	s.proto, s.hasICMP, s.icmpType, s.icmpCode = p.Proto, p.HasICMP, p.ICMPType, p.ICMPCode
	s.setRest(p)
}

// setRest is set's for a fragment of an echo, or a packet with VLANs or
// tunnels, or after one.
func (s *packetSummary) setRest(p *Packet) {
	if !p.HasICMP && p.Frag.FirstEcho {
		s.hasICMP, s.icmpType, s.icmpCode = fragICMP(p)
	}
	if p.NVLAN|p.Tunnel.Depth != 0 || s.nvlan|s.tunnel.Depth != 0 {
		s.nvlan, s.vlans, s.tunnel = p.NVLAN, p.VLANs, p.Tunnel
	}
}

// tracker owns the attack lifecycle for every (rule, target).
type tracker struct {
	e       *Engine
	attacks map[attackKey]*attack
	free    []*attack // recycled entries: a pending attack costs no allocation
	// recent[rule] holds the attacks each rule hit last and before: a
	// flood hits one attack packet after packet and skips the map, even
	// when several rules report each packet (icmp_flood, blacknurse and
	// icmp_error_abuse on forged port unreachables) or one rule sees two
	// floods at once (an IPv4 and an IPv6 victim, hit by turns).
	recent []recentHit
	// door admits a source to the top sources of an attack whose summary
	// is full only on its second packet (see hit).
	door *sketch.Doorkeeper
	// full: the table was found full of active attacks; makeRoom fails at
	// once until an attack is released.
	full bool
	// made: hit made a new attack (set there, cleared by
	// Reporter.HitMany, which reads it).
	made bool
	// fleetObs is the fleet's sums being judged (Engine.ObserveFleet).
	fleetObs *Observation
}

func newTracker(e *Engine) *tracker {
	return &tracker{e: e, attacks: make(map[attackKey]*attack), door: sketch.NewDoorkeeper(topDoorBits)}
}

// hit is Reporter.Hit: a hit of rule's at target, dropped when scope (nil:
// none) does not own target. It returns the attack hit (nil: dropped);
// one it made sets t.made (Reporter.HitMany's).
func (t *tracker) hit(rule int, scope *Scope, target netip.Addr, p *Packet, m *Measure) *attack {
	if m.Level < LevelSustain || scope != nil && !scope.Owns(target) {
		return nil
	}
	var a *attack
	if rule >= len(t.recent) {
		t.recent = append(t.recent, make([]recentHit, rule+1-len(t.recent))...) // once per rule
	}
	c := &t.recent[rule]
	switch {
	case c.a != nil && c.target == target:
		a = c.a
	case c.prev != nil && c.prevTarget == target:
		a = c.prev
		c.a, c.target, c.prev, c.prevTarget = c.prev, c.prevTarget, c.a, c.target
	default:
		key := attackKey{rule, target}
		var ok bool
		if a, ok = t.attacks[key]; !ok {
			if len(t.attacks) >= t.e.cfg.MaxAttacks && !t.makeRoom() {
				t.e.stats.AttacksDropped++
				return nil
			}
			a = t.newAttack()
			t.made = true
			a.first, a.firstNs = p.Time, p.TimeNs
			a.salt = sketch.Mix64(uint64(p.TimeNs)^uint64(rule)<<48) ^ sketch.HashAddr(target)
			// The rate rule's window already holds the packets that
			// brought the target this far: they belong to the attack's
			// totals.
			if m.WindowPackets > 0 {
				a.packets, a.bytes = m.WindowPackets-1, m.WindowBytes-min(m.WindowBytes, uint64(p.WireLen))
			}
			t.attacks[key] = a
		}
		c.prev, c.prevTarget, c.a, c.target = c.a, c.target, a, target
	}
	a.lastNs = p.TimeNs // the time itself is lastTime's: a packet's Time and TimeNs agree
	a.packets++
	a.bytes += uint64(p.WireLen)
	// What events report of the measure, field by field (see packetSummary.set).
	a.pps, a.bps, a.window, a.threshold = m.PPS, m.BPS, m.Window, m.Threshold
	if m.PPS > a.peakPPS {
		a.peakPPS = m.PPS
	}
	if m.BPS > a.peakBPS {
		a.peakBPS = m.BPS
	}
	if s := &a.lastPacket; p.HasICMP && p.NVLAN|p.Tunnel.Depth|s.nvlan|s.tunnel.Depth == 0 {
		s.src, s.dst = p.Src, p.Dst // set, inlined for the common case
		s.proto, s.hasICMP, s.icmpType, s.icmpCode = p.Proto, true, p.ICMPType, p.ICMPCode
	} else {
		s.set(p)
	}
	if p.Src.IsValid() { // a fleet correlator's sums have no source
		h := p.SrcHash() // one hash for both source sketches (and smurf's)
		a.sources.AddHash(h)
		// The top sources: a source the summary holds, or one it has
		// room for, is counted; a new source of a full summary takes over
		// a slot only at its second packet (the doorkeeper held its
		// first, which it counts then). A flood of spoofed sources, each
		// seen once, thus costs a cell write a packet, not a slot taken
		// over, and leaves the slots to sources that repeat: a real
		// source among them is not pushed out by the noise. Crowded
		// answers the spoofed source's case (absent from a full
		// summary) inline, Recount a source's packets in a row.
		if a.top.Crowded(h) || !a.top.Recount(p.Src, h, 1) && !a.top.Count(p.Src, h, 1) {
			if t.door.Seen(h ^ a.salt) {
				a.top.Replace(p.Src, h, 2)
			} else {
				a.top.Pass()
			}
		}
	} else if o := t.fleetObs; o != nil {
		a.fleet = true
		a.fleetSources.Merge(&o.Sources)
	}
	if p.HasICMP {
		if k := 1<<16 | uint32(p.ICMPType)<<8 | uint32(p.ICMPCode); k == a.runKey {
			a.runN++
		} else {
			a.countType(uint16(k), 1)
		}
	}
	if a.active {
		if p.TimeNs >= a.nextEmitNs {
			a.nextEmitNs = p.TimeNs + int64(t.e.cfg.UpdateInterval)
			t.emit(rule, target, a, PhaseUpdate, p.Time, "")
		}
	} else if m.Level == LevelFire {
		a.active = true
		a.started = p.Time
		a.nextEmitNs = p.TimeNs + int64(t.e.cfg.UpdateInterval)
		t.e.stats.AttacksStarted++
		t.emit(rule, target, a, PhaseStart, p.Time, "")
	}
	return a
}

// countType counts w packets of ICMP type and code k (type<<8 | code):
// the run of the type counted last grows, or another type's run begins
// (the one before it counted in types).
func (a *attack) countType(k uint16, w uint64) {
	key := 1<<16 | uint32(k)
	if a.runKey != 0 {
		if key == a.runKey {
			a.runN += w
			return
		}
		a.flushTypes()
	}
	a.runKey, a.runN = key, w
}

// flushTypes counts the run of the type counted last in types (before an
// event reads them).
func (a *attack) flushTypes() {
	if a.runKey != 0 {
		if k := uint16(a.runKey); !a.types.Again(k, a.runN) {
			a.types.Add(k, a.runN)
		}
		a.runKey, a.runN = 0, 0
	}
}

// lastTime is the time of a's last hit: its first's moved on to lastNs
// (the packet times of one attack share a location), so that a hit
// stores no time.
func (a *attack) lastTime() time.Time { return a.first.Add(time.Duration(a.lastNs - a.firstNs)) }

func (t *tracker) newAttack() *attack {
	if n := len(t.free); n > 0 {
		a := t.free[n-1]
		t.free = t.free[:n-1]
		return a
	}
	return new(attack)
}

// recentHit is the attack a rule hit last (a, at target) and the one it
// hit before (prev, at prevTarget).
type recentHit struct {
	target, prevTarget netip.Addr
	a, prev            *attack
}

// makeRoomSample is how many attacks makeRoom looks at before it settles
// for the stalest pending one it has seen.
const makeRoomSample = 32

func (t *tracker) release(key attackKey, a *attack) {
	t.full = false
	if key.rule < len(t.recent) {
		c := &t.recent[key.rule]
		if c.a == a {
			c.a, c.target = nil, netip.Addr{}
		}
		if c.prev == a {
			c.prev, c.prevTarget = nil, netip.Addr{}
		}
	}
	delete(t.attacks, key)
	*a = attack{}
	if len(t.free) < 64 {
		t.free = append(t.free, a)
	}
}

// makeRoom evicts the stalest pending attack; active attacks are never
// evicted. It reports whether room was made.
func (t *tracker) makeRoom() bool {
	if t.full {
		return false // nothing was released since the table was found full of active attacks
	}
	var victim attackKey
	var va *attack
	seen := 0
	for k, a := range t.attacks {
		if !a.active && (va == nil || a.lastNs < va.lastNs) {
			victim, va = k, a
		}
		// Look at a bounded sample: a full scan per packet would let an
		// attacker who keeps the table full make every hit cost 4,096
		// steps. Go's map iteration starts at a random place.
		if seen++; seen == makeRoomSample && va != nil {
			break
		}
	}
	if va == nil {
		t.full = true
		return false
	}
	t.release(victim, va)
	t.e.stats.PendingEvicted++
	return true
}

// fragICMP is the ICMP header of the train a non-first fragment belongs
// to, when its first fragment, seen, was an echo request (whose code is
// 0 by definition): an event raised by the fragment then names the echo
// it carries (icmp_type, icmp_code, and so a community_id).
func fragICMP(p *Packet) (has bool, typ, code uint8) {
	if p.HasICMP || !p.Frag.FirstEcho {
		return p.HasICMP, p.ICMPType, p.ICMPCode
	}
	return true, p.Frag.ICMPType, 0
}

func (t *tracker) alert(rule int, target netip.Addr, p *Packet, extra map[string]any) {
	hasICMP, icmpType, icmpCode := fragICMP(p)
	ev := &Event{
		Time:        p.Time,
		Rule:        t.e.rules[rule].Info(),
		Phase:       PhaseStart,
		Target:      target,
		Src:         p.Src,
		Dst:         p.Dst,
		Proto:       p.Proto,
		HasICMP:     hasICMP,
		ICMPType:    icmpType,
		ICMPCode:    icmpCode,
		Source:      p.Src,
		FirstSource: p.Src,
		Started:     p.Time,
		LastSeen:    p.Time,
		Packets:     1,
		Bytes:       uint64(p.WireLen),
		Sources:     1,
		Extra:       extra,
		Tunnel:      p.Tunnel,
	}
	if p.NVLAN > 0 {
		ev.VLANs = append([]uint16(nil), p.VLANs[:min(int(p.NVLAN), maxVLANsKept)]...)
	}
	t.e.stats.AttacksStarted++
	t.e.sink.Emit(ev)
}

// expire ends active attacks and drops pending ones whose last hit is more
// than the hold time before now (Unix ns).
func (t *tracker) expire(now int64) {
	var due []attackKey
	for k, a := range t.attacks {
		if now-a.lastNs < t.e.hold[k.rule] {
			continue
		}
		if a.active {
			due = append(due, k)
		} else {
			t.release(k, a)
		}
	}
	t.endInOrder(due, EndQuiet)
}

// remap moves every attack to its rule's index in a new rule list: to(old)
// gives the new index, or false when the rule is gone, in which case its
// active attacks end with reason (pending ones are dropped). It runs
// before the engine swaps its rules, so ends still name the old rule.
func (t *tracker) remap(to func(old int) (int, bool), reason string) {
	t.recent = nil
	moved := make(map[attackKey]*attack, len(t.attacks))
	var gone []attackKey
	for k, a := range t.attacks {
		n, ok := to(k.rule)
		switch {
		case ok:
			moved[attackKey{n, k.target}] = a
		case a.active:
			gone = append(gone, k)
		default:
			t.release(k, a)
		}
	}
	t.endInOrder(gone, reason)
	t.attacks = moved
}

// closeAll ends every active attack (reason says why) and drops pending ones.
// The end time is when the hold time would have run out, as a sensor that
// kept running would have reported it.
func (t *tracker) closeAll(reason string) {
	var due []attackKey
	for k, a := range t.attacks {
		if a.active {
			due = append(due, k)
		} else {
			t.release(k, a)
		}
	}
	t.endInOrder(due, reason)
}

// endInOrder ends the attacks of keys in a fixed order — EndOrder's: by
// last packet, then rule, then target — so that output does not depend on
// map iteration, nor on how many engines share the targets.
func (t *tracker) endInOrder(keys []attackKey, reason string) {
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, func(a, b attackKey) int {
		ra, rb := t.e.rules[a.rule].Info(), t.e.rules[b.rule].Info()
		return endOrder(t.attacks[a].lastNs, t.attacks[b].lastNs, &ra, &rb, a.target, b.target)
	})
	for _, k := range keys {
		a := t.attacks[k]
		at := a.lastTime().Add(time.Duration(t.e.hold[k.rule]))
		if (reason == EndShutdown || reason == EndRuleOff) && t.e.now.Before(at) {
			// The sensor stops (or drops the rule) now: the attack ends
			// now, not when its hold time would have run out.
			at = t.e.now
		}
		t.end(k, a, at, reason)
	}
}

func (t *tracker) end(k attackKey, a *attack, at time.Time, reason string) {
	t.e.stats.AttacksEnded++
	t.emit(k.rule, k.target, a, PhaseEnd, at, reason)
	t.release(k, a)
}

func (t *tracker) active() int {
	n := 0
	for _, a := range t.attacks {
		if a.active {
			n++
		}
	}
	return n
}

func (t *tracker) emit(rule int, target netip.Addr, a *attack, phase Phase, at time.Time, reason string) {
	r := t.e.rules[rule]
	ev := &Event{
		Time:      at,
		Rule:      r.Info(),
		Phase:     phase,
		Target:    target,
		Src:       a.lastPacket.src,
		Dst:       a.lastPacket.dst,
		Proto:     a.lastPacket.proto,
		HasICMP:   a.lastPacket.hasICMP,
		ICMPType:  a.lastPacket.icmpType,
		ICMPCode:  a.lastPacket.icmpCode,
		Started:   a.first,
		LastSeen:  a.lastTime(),
		Packets:   a.packets,
		Bytes:     a.bytes,
		PPS:       a.pps,
		BPS:       a.bps,
		PeakPPS:   a.peakPPS,
		PeakBPS:   a.peakBPS,
		Window:    a.window,
		Threshold: a.threshold,
		EndReason: reason,
		Tunnel:    a.lastPacket.tunnel,
	}
	if n := a.lastPacket.nvlan; n > 0 {
		ev.VLANs = append([]uint16(nil), a.lastPacket.vlans[:min(int(n), maxVLANsKept)]...)
	}
	if phase == PhaseEnd {
		ev.PPS, ev.BPS = 0, 0 // the attack is over; its peak says how big it was
	}
	// Top sources are listed with their guaranteed packet counts, and only
	// when they stand out: in a flood of unique spoofed sources no source
	// does, and the list stays empty rather than showing noise.
	for _, s := range a.top.Top(topReported, 2) {
		ev.TopSources = append(ev.TopSources, SourceCount{Addr: s.Key, Packets: s.Min()})
	}
	ev.Source = a.lastPacket.src
	if len(ev.TopSources) > 0 {
		ev.Source = ev.TopSources[0].Addr
	}
	if !a.firstSource.IsValid() {
		a.firstSource = ev.Source
	}
	ev.FirstSource = a.firstSource
	if a.fleet {
		ev.Sources, ev.SourcesEstimated = min(a.fleetSources.Estimate(), a.packets), true
	} else if a.top.Exact() {
		ev.Sources = uint64(a.top.Len())
	} else {
		ev.Sources, ev.SourcesEstimated = min(a.sources.Estimate(), a.packets), true
	}
	a.flushTypes()
	for _, tc := range a.types.Top(topReported, 1) {
		ev.ICMPTypes = append(ev.ICMPTypes, TypeCount{Type: uint8(tc.Key >> 8), Code: uint8(tc.Key), Packets: tc.Min()})
	}
	if d, ok := r.(Describer); ok {
		ev.Extra = make(map[string]any)
		d.Describe(target, ev.Extra)
	}
	t.e.sink.Emit(ev)
}
