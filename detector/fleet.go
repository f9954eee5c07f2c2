package detector

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/window"
)

// FleetSlots is the most window buckets one Observation carries.
const FleetSlots = window.Buckets

// SlotCount is the packets and bytes of one window bucket.
type SlotCount struct {
	Packets uint32
	Bytes   uint64
}

// Observation is what one engine measured of one key of a rate rule (a
// prefix of icmp_carpet_flood) over the last fleet interval, in the rule's
// own window buckets, so that a correlator can sum several sensors'
// observations and judge the sums with the same rule (FleetJudge). A
// sensor's observations are built at the interval from the state the rule
// keeps anyway, never per packet; the correlator's are the sums.
type Observation struct {
	// Rule is the rule's name; Key and Bits the prefix (or target, with
	// Bits the address length).
	Rule string
	Key  netip.Addr
	Bits int
	// SlotWidth is the width of the rule's window buckets; FirstSlot the
	// bucket index (Unix ns / width) of Echo[0] and Any[0]; Slots how many
	// are set.
	SlotWidth time.Duration
	FirstSlot int64
	Slots     int
	// Echo counts echo requests, Any every ICMP message (icmp_flood,
	// icmp_carpet_flood); PortUnreach port unreachables (ICMP 3/3, ICMPv6
	// 1/4: blacknurse); TrainsOpened and TrainsCompleted the fragment
	// trains opened and completed (frag_flood: packets are trains, bytes
	// the fragments' that opened or completed them). A rule fills the
	// classes it judges; the engine zeroes the others.
	Echo, Any                     [FleetSlots]SlotCount
	PortUnreach                   [FleetSlots]SlotCount
	TrainsOpened, TrainsCompleted [FleetSlots]SlotCount
	// Hosts is the rule's 512-bit linear-counting bitmap of the distinct
	// hosts hit (over its last one to two windows): bitmaps merge by OR.
	Hosts [8]uint64
	// Sources and HostsHLL count the distinct sources (every rule) and
	// hosts (icmp_carpet_flood) the key's packets had since the rule's
	// last report, about the interval: HyperLogLog registers, merged by
	// maximum into the fleet's. Empty where the sensor had none.
	Sources, HostsHLL sketch.MiniHLL
	// TopHosts are the most hit hosts with their (estimated) packets, out
	// of HostTotal packets counted for the share test.
	TopHosts  []SourceCount
	HostTotal uint64
	// AttackStarted is set when this engine has an attack of Rule on Key
	// open itself (its events' Started: the attack's first hit), so that a
	// correlator does not raise it again and names it by its attack id.
	AttackStarted time.Time
}

// FleetSource is implemented by rules whose per-key rates a fleet
// correlator sums. At each fleet interval the engine calls FleetReport
// (on its goroutine, never per packet); the rule fills o (reused) for
// every key whose rate over the slots [until-n, until) is at least floor
// times its start level, and calls report with it. FleetSlotWidth is the
// width of the rule's window buckets (0: it reports nothing); the engine
// reads it when the rules are set.
type FleetSource interface {
	FleetReport(until int64, n int, floor float64, o *Observation, report func(*Observation))
	FleetSlotWidth() time.Duration
}

// FleetJudge is implemented by rules that judge the fleet's sums: slot i
// of o (the sum of every sensor's observations of o.Key) is taken into the
// rule's window for o.Key and judged as Observe judges a packet, hits
// going to rep (Reporter.HitMany).
type FleetJudge interface {
	JudgeFleet(o *Observation, i int, rep Reporter)
}

// fleetState is the engine's fleet reporting (SetFleet).
type fleetState struct {
	interval int64
	floor    float64
	next     int64
	report   func(*Observation)
	each     func(*Observation) // Engine.fleetReport, made once (a method value per interval would allocate)
	obs      Observation
	rule     int
}

// SetFleet makes the engine call report, every interval of packet time,
// with the observations of its FleetSource rules (see Observation): keys
// at least floor times a start level. report runs on the engine's
// goroutine and must not keep o.
func (e *Engine) SetFleet(interval time.Duration, floor float64, report func(o *Observation)) {
	e.fleet = &fleetState{interval: int64(interval), floor: floor, report: report}
	e.fleet.each = e.fleetReport
	e.fleet.obs.TopHosts = make([]SourceCount, 0, 8)
}

// fleetTick runs at each engine tick: once the clock passed an interval
// boundary, the rules report the interval that ended there.
func (e *Engine) fleetTick() {
	f := e.fleet
	if e.nowNs < f.next {
		return
	}
	e.fleetReportUntil(e.nowNs - e.nowNs%f.interval)
}

// fleetFlush reports the interval under way (Close: the input ended).
func (e *Engine) fleetFlush() {
	f := e.fleet
	e.fleetReportUntil(e.nowNs - e.nowNs%f.interval + f.interval)
}

func (e *Engine) fleetReportUntil(until int64) {
	f := e.fleet
	f.next = until + f.interval
	for _, s := range e.fleetSources {
		f.rule = s.rule
		n := int(min(f.interval/s.width, FleetSlots))
		f.obs.clearCounts()
		s.src.FleetReport(until/s.width, max(n, 1), f.floor, &f.obs, f.each)
	}
}

// fleetSource is a rule that reports to a fleet, resolved when the rules
// are set: a type assertion per rule at every interval would cost a
// runtime call each, and now and then an allocation (the assertion's
// cache growing).
type fleetSource struct {
	rule  int
	src   FleetSource
	width int64
}

// fleetJudge is a rule that judges the fleet's sums, by name.
type fleetJudge struct {
	rule  int
	name  string
	judge FleetJudge
}

// clearCounts zeroes every class's slots, so that a rule reporting some
// classes leaves none of another rule's counts in the reused Observation.
func (o *Observation) clearCounts() {
	o.Echo, o.Any, o.PortUnreach = [FleetSlots]SlotCount{}, [FleetSlots]SlotCount{}, [FleetSlots]SlotCount{}
	o.TrainsOpened, o.TrainsCompleted = [FleetSlots]SlotCount{}, [FleetSlots]SlotCount{}
	o.Sources.Reset()
	o.HostsHLL.Reset()
}

func (e *Engine) fleetReport(o *Observation) {
	o.AttackStarted = time.Time{}
	if a, ok := e.tracker.attacks[attackKey{e.fleet.rule, o.Key}]; ok && a.active {
		o.AttackStarted = a.first // its events' Started, which their attack id is made of
	}
	e.fleet.report(o)
}

// ObserveFleet feeds the engine the fleet's sums o (a correlator): for
// each slot, the clock moves to the slot's end (ending attacks gone quiet)
// and the rule named o.Rule judges it (FleetJudge).
func (e *Engine) ObserveFleet(o *Observation) {
	// The attacks o's slots hit count o's sources (tracker.hit).
	e.tracker.fleetObs = o
	defer func() { e.tracker.fleetObs = nil }()
	for i := 0; i < o.Slots && i < FleetSlots; i++ {
		end := (o.FirstSlot + int64(i) + 1) * int64(o.SlotWidth)
		e.advance(time.Unix(0, end).UTC(), end)
		for _, j := range e.fleetJudges {
			if j.name == o.Rule {
				j.judge.JudgeFleet(o, i, Reporter{e: e, rule: j.rule})
			}
		}
	}
}

// HitMany is Hit for a hit that stands for packets packets of bytes bytes
// (a correlator's sum of several sensors' slot): the attack's totals grow
// by those, not by p alone.
func (r Reporter) HitMany(target netip.Addr, p *Packet, m *Measure, packets, bytes uint64) {
	if r.scope != nil && !r.scope.Owns(target) {
		return
	}
	t := r.e.tracker
	t.made = false
	a := t.hit(r.rule, nil, target, p, m) // the scope is checked above
	// The hit counted p once; the first hit of an attack whose measure
	// carries the rule's window counted the window (the slot included).
	if a != nil && (!t.made || m.WindowPackets == 0) && packets > 0 {
		a.packets += packets - 1
		a.bytes += bytes - min(bytes, uint64(p.WireLen))
		if p.HasICMP {
			a.countType(uint16(p.ICMPType)<<8|uint16(p.ICMPCode), packets-1)
		}
	}
}
