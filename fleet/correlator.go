package fleet

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// Engine is what the correlator drives: a detection engine whose rules
// judge the fleet's sums (detector.Engine).
type Engine interface {
	ObserveFleet(o *detector.Observation)
	Advance(now time.Time)
	Close(reason string)
}

// groupKey is one key's interval: every sensor's record of it is summed.
type groupKey struct {
	rule      string
	key       netip.Addr
	bits      int
	firstSlot int64
}

// ruleKey names what a fleet attack is of.
type ruleKey struct {
	rule string
	key  netip.Addr
}

// group holds the records of one key and interval, by sensor.
type group struct {
	end     int64 // interval end, Unix ns
	sensors map[string]*sensorObs
}

type sensorObs struct {
	o        detector.Observation
	attackID string
}

// SensorShare is one sensor's part of a fleet attack's latest interval.
type SensorShare struct {
	Name  string
	PPS   float64
	Share float64
}

// keyInfo is what the correlator last knew of a key, for Describe.
type keyInfo struct {
	sensors   []SensorShare
	attackIDs []string // sensors' own attacks on the key
}

// maxGroups and maxKeys bound the correlator's state: groups waiting for
// the watermark, and keys described. Past them the oldest groups are
// judged early, and the key table is cleared (counted).
const (
	maxGroups  = 1 << 16
	maxKeys    = 1 << 16
	maxSensors = 1024 // per key and interval
)

// Correlator sums sensors' observation records per key and interval, in
// event time: an interval is judged once the watermark (the latest
// interval end seen, less lateness) has passed its end, so records of
// sensors a little behind still count. A record for an interval already
// judged is late: dropped and counted. A sensor's record replaces its
// earlier record of the same key and interval, so redelivered records
// are not counted twice.
type Correlator struct {
	eng      Engine
	lateness int64
	groups   map[groupKey]*group
	maxEnd   int64 // latest interval end seen
	judged   int64 // intervals ending at or before this are judged
	keys     map[ruleKey]*keyInfo
	sum      detector.Observation
	order    []groupKey

	// Records, Late and Evicted count what Add took, what came too late,
	// and groups judged early or records refused for lack of room;
	// Suppressed the key intervals a sensor reported itself.
	Records, Late, Evicted, Suppressed uint64
}

// New returns a correlator feeding eng, waiting lateness for records.
func New(eng Engine, lateness time.Duration) *Correlator {
	return &Correlator{eng: eng, lateness: int64(lateness), groups: map[groupKey]*group{},
		keys: map[ruleKey]*keyInfo{}, judged: math.MinInt64}
}

// Add takes one sensor's record (decoded into o, which it copies).
func (c *Correlator) Add(sensor, attackID string, o *detector.Observation) {
	end := (o.FirstSlot + int64(o.Slots)) * int64(o.SlotWidth)
	if end <= c.judged {
		c.Late++
		return
	}
	c.Records++
	k := groupKey{o.Rule, o.Key, o.Bits, o.FirstSlot}
	g := c.groups[k]
	if g == nil {
		if len(c.groups) >= maxGroups {
			c.judgeUntil(c.oldestEnd())
			c.Evicted++
		}
		g = &group{end: end, sensors: map[string]*sensorObs{}}
		c.groups[k] = g
	}
	if _, ok := g.sensors[sensor]; !ok && len(g.sensors) >= maxSensors {
		c.Evicted++ // a flood of sensor names on the topic
		return
	}
	s := &sensorObs{attackID: attackID}
	s.o = *o
	s.o.TopHosts = slices.Clone(o.TopHosts)
	g.sensors[sensor] = s
	c.maxEnd = max(c.maxEnd, end)
}

func (c *Correlator) oldestEnd() int64 {
	oldest := int64(math.MaxInt64)
	for _, g := range c.groups {
		oldest = min(oldest, g.end)
	}
	return oldest
}

// Flush judges every interval the watermark has passed; all judges every
// interval held (the input ended).
func (c *Correlator) Flush(all bool) {
	until := c.maxEnd - c.lateness
	if all {
		until = math.MaxInt64
	}
	c.judgeUntil(until)
}

// judgeUntil judges the groups ending at or before until, in order of
// end, rule and key, and moves the engine's clock to the watermark.
func (c *Correlator) judgeUntil(until int64) {
	c.order = c.order[:0]
	for k, g := range c.groups {
		if g.end <= until {
			c.order = append(c.order, k)
		}
	}
	slices.SortFunc(c.order, func(a, b groupKey) int {
		if x := cmp.Compare(c.groups[a].end, c.groups[b].end); x != 0 {
			return x
		}
		if x := cmp.Compare(a.rule, b.rule); x != 0 {
			return x
		}
		if x := a.key.Compare(b.key); x != 0 {
			return x
		}
		return cmp.Compare(a.bits, b.bits)
	})
	for _, k := range c.order {
		g := c.groups[k]
		c.judge(k, g)
		delete(c.groups, k)
		c.judged = max(c.judged, g.end)
	}
	if until != math.MaxInt64 && until > c.judged {
		c.judged = until
		c.eng.Advance(time.Unix(0, until).UTC())
	}
}

// judge sums a group's records and feeds the sums to the engine, unless a
// sensor reports the attack itself.
func (c *Correlator) judge(k groupKey, g *group) {
	names := make([]string, 0, len(g.sensors))
	for n := range g.sensors {
		names = append(names, n)
	}
	slices.Sort(names)
	s := &c.sum
	*s = detector.Observation{Rule: k.rule, Key: k.key, Bits: k.bits, FirstSlot: k.firstSlot, TopHosts: s.TopHosts[:0]}
	info := &keyInfo{}
	var total float64
	hostCounts := map[netip.Addr]uint64{}
	for _, n := range names {
		o := &g.sensors[n].o
		if id := g.sensors[n].attackID; id != "" {
			info.attackIDs = append(info.attackIDs, id)
		}
		s.SlotWidth = o.SlotWidth
		s.Slots = max(s.Slots, o.Slots)
		var pk uint64
		for i := 0; i < o.Slots; i++ {
			s.Echo[i].Packets += o.Echo[i].Packets
			s.Echo[i].Bytes += o.Echo[i].Bytes
			s.Any[i].Packets += o.Any[i].Packets
			s.Any[i].Bytes += o.Any[i].Bytes
			addSlot(&s.PortUnreach[i], o.PortUnreach[i])
			addSlot(&s.TrainsOpened[i], o.TrainsOpened[i])
			addSlot(&s.TrainsCompleted[i], o.TrainsCompleted[i])
			pk += uint64(o.Any[i].Packets) + uint64(o.PortUnreach[i].Packets) + uint64(o.TrainsOpened[i].Packets)
		}
		for i := range s.Hosts {
			s.Hosts[i] |= o.Hosts[i]
		}
		for _, t := range o.TopHosts {
			hostCounts[t.Addr] += t.Packets
		}
		s.HostTotal += o.HostTotal
		secs := float64(o.Slots) * o.SlotWidth.Seconds()
		info.sensors = append(info.sensors, SensorShare{Name: n, PPS: float64(pk) / secs})
		total += float64(pk) / secs
	}
	for i := range info.sensors {
		if total > 0 {
			info.sensors[i].Share = info.sensors[i].PPS / total
		}
	}
	for a, n := range hostCounts {
		s.TopHosts = append(s.TopHosts, detector.SourceCount{Addr: a, Packets: n})
	}
	slices.SortFunc(s.TopHosts, func(a, b detector.SourceCount) int {
		if x := cmp.Compare(b.Packets, a.Packets); x != 0 {
			return x
		}
		return a.Addr.Compare(b.Addr)
	})
	if len(c.keys) >= maxKeys {
		clear(c.keys)
	}
	c.keys[ruleKey{k.rule, k.key}] = info
	if len(info.attackIDs) > 0 {
		// A sensor sees this attack on its own and reports it: the fleet
		// does not raise it again. Its clock still moves.
		c.Suppressed++
		c.eng.Advance(time.Unix(0, g.end).UTC())
		return
	}
	c.eng.ObserveFleet(s)
}

// Describe adds what the fleet knows of rule's target's latest interval
// to an event's context: sensors ([{name, pps, share}]) and the attack ids of
// sensors that report the attack on their own (sensor_attack_ids).
func (c *Correlator) Describe(rule string, target netip.Addr, extra map[string]any) {
	info := c.keys[ruleKey{rule, target}]
	if info == nil {
		return
	}
	var ss []any
	for _, s := range info.sensors {
		ss = append(ss, map[string]any{"name": s.Name, "pps": s.PPS, "share": math.Round(s.Share*1000) / 1000})
	}
	if len(ss) > 0 {
		extra["sensors"] = ss
	}
	if len(info.attackIDs) > 0 {
		ids := make([]any, len(info.attackIDs))
		for i, id := range info.attackIDs {
			ids[i] = id
		}
		extra["sensor_attack_ids"] = ids
	}
}

// Pending is the number of key intervals waiting for the watermark.
func (c *Correlator) Pending() int { return len(c.groups) }

// addSlot adds one sensor's slot to the fleet's sum.
func addSlot(sum *detector.SlotCount, s detector.SlotCount) {
	sum.Packets += s.Packets
	sum.Bytes += s.Bytes
}
