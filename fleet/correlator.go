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

// maxGroups, maxHeld and maxKeys bound the correlator's state, all of it
// keyed by what the topic's records say (prefixes, sensor names: a forger
// on the bus chooses them): groups waiting for the watermark, records
// held in them, keys described. Past maxGroups or maxHeld the oldest
// groups are judged early (Evicted); past maxKeys the key table is
// cleared (KeysCleared). maxAheadGroups bounds the groups held ahead of
// the watermark (see Correlator): past it an ahead record is refused
// (Evicted). maxSensors bounds the sensors of one group and the sensors
// whose clocks are ahead.
const (
	maxGroups      = 1 << 16
	maxHeld        = 1 << 17
	maxAheadGroups = 1 << 12
	maxKeys        = 1 << 16
	maxSensors     = 1024
)

// Correlator sums sensors' observation records per key and interval, in
// event time: an interval is judged once the watermark (the latest
// interval end seen, less lateness) has passed its end, so records of
// sensors a little behind still count. A record for an interval already
// judged is late: dropped and counted. A sensor's record replaces its
// earlier record of the same key and interval, so redelivered records
// are not counted twice.
//
// One sensor cannot drag the fleet's clock: a record whose interval ends
// more than maxSkew past the latest end seen (a sensor with a wrong clock,
// a forged record) is ahead (counted): it is held, but does not move the
// watermark, until a second sensor's records reach within maxSkew of it
// (the whole fleet came back after a quiet spell); held records the fleet
// never reaches are dropped at the end. A correlator that has only ever
// seen one sensor follows that sensor's clock. Records far behind are late
// as above. There is no minimum over the sensors' clocks, so a sensor that
// went quiet or died holds nothing back.
type Correlator struct {
	eng      Engine
	lateness int64
	maxSkew  int64
	groups   map[groupKey]*group
	maxEnd   int64 // latest interval end seen (not ahead)
	started  bool  // maxEnd is set
	judged   int64 // intervals ending at or before this are judged
	keys     map[ruleKey]*keyInfo
	sum      detector.Observation
	order    []groupKey
	held     int // records in groups
	// aheadGroups are the groups ending past maxEnd+maxSkew; ahead the
	// furthest end of each sensor's ahead records; first the first
	// sensor seen, multi whether another was seen since.
	aheadGroups int
	ahead       map[string]int64
	first       string
	multi       bool
	marks       []int64

	// Records, Late and Evicted count what Add took, what came too late,
	// and groups judged early or records refused for lack of room;
	// Ahead the records more than the skew ahead of the fleet's clock
	// (held until confirmed, then summed, or dropped at the end);
	// Suppressed the key intervals a sensor reported itself; KeysCleared
	// how often the key table was full and cleared.
	Records, Late, Evicted, Ahead, Suppressed, KeysCleared uint64
}

// New returns a correlator feeding eng, waiting lateness for records and
// refusing to let one sensor move the clock more than maxSkew at once.
func New(eng Engine, lateness, maxSkew time.Duration) *Correlator {
	return &Correlator{eng: eng, lateness: int64(lateness), maxSkew: int64(maxSkew), groups: map[groupKey]*group{},
		keys: map[ruleKey]*keyInfo{}, judged: math.MinInt64, ahead: map[string]int64{}}
}

// Add takes one sensor's record (decoded into o, which it copies).
func (c *Correlator) Add(sensor, attackID string, o *detector.Observation) {
	end := (o.FirstSlot + int64(o.Slots)) * int64(o.SlotWidth)
	if end <= c.judged {
		c.Late++
		return
	}
	if c.first == "" {
		c.first = sensor
	} else if sensor != c.first {
		c.multi = true
	}
	ahead := c.started && end > c.maxEnd+c.maxSkew && c.multi
	if ahead {
		c.Ahead++
	}
	k := groupKey{o.Rule, o.Key, o.Bits, o.FirstSlot}
	g := c.groups[k]
	if g == nil {
		switch {
		case ahead && (c.aheadGroups >= maxAheadGroups || len(c.groups) >= maxGroups):
			c.Evicted++ // a flood of records from the future
			return
		case len(c.groups) >= maxGroups || c.held >= maxHeld:
			c.evict()
		}
		g = &group{end: end, sensors: map[string]*sensorObs{}}
		c.groups[k] = g
		if ahead {
			c.aheadGroups++
		}
	}
	if _, ok := g.sensors[sensor]; !ok {
		if len(g.sensors) >= maxSensors {
			c.Evicted++ // a flood of sensor names on the topic
			return
		}
		if c.held >= maxHeld {
			c.evict()
		}
		c.held++
	}
	c.Records++
	s := &sensorObs{attackID: attackID}
	s.o = *o
	s.o.TopHosts = slices.Clone(o.TopHosts)
	g.sensors[sensor] = s
	if ahead {
		c.noteAhead(sensor, end)
		return
	}
	c.advanceTo(end)
}

// advanceTo moves the latest end seen to end (if later).
func (c *Correlator) advanceTo(end int64) {
	if c.started && end <= c.maxEnd {
		return
	}
	c.maxEnd, c.started = end, true
	if c.aheadGroups > 0 {
		c.aheadGroups = 0
		for _, g := range c.groups {
			if g.end > c.maxEnd+c.maxSkew {
				c.aheadGroups++
			}
		}
	}
	for s, m := range c.ahead {
		if m <= c.maxEnd+c.maxSkew {
			delete(c.ahead, s)
		}
	}
}

// noteAhead records that sensor's clock reached end, ahead of the fleet's;
// once two sensors' ahead clocks are within maxSkew of each other, the
// fleet's clock moves to the earlier of the two.
func (c *Correlator) noteAhead(sensor string, end int64) {
	if m, ok := c.ahead[sensor]; ok || len(c.ahead) < maxSensors {
		c.ahead[sensor] = max(m, end)
	}
	c.marks = c.marks[:0]
	for _, m := range c.ahead {
		c.marks = append(c.marks, m)
	}
	slices.Sort(c.marks)
	for i := 0; i+1 < len(c.marks); i++ {
		if c.marks[i+1]-c.marks[i] <= c.maxSkew {
			c.advanceTo(c.marks[i])
			return
		}
	}
}

// evict judges the oldest groups that are not ahead, early, to make room.
func (c *Correlator) evict() {
	oldest := int64(math.MaxInt64)
	for _, g := range c.groups {
		if g.end <= c.maxEnd+c.maxSkew {
			oldest = min(oldest, g.end)
		}
	}
	if oldest != math.MaxInt64 {
		c.judgeUntil(oldest)
		c.Evicted++
	}
}

// Flush judges every interval the watermark has passed; all judges every
// interval held (the input ended) but those ahead of the fleet's clock,
// which are dropped (they were counted as Ahead).
func (c *Correlator) Flush(all bool) {
	if !c.started {
		return
	}
	if !all {
		c.judgeUntil(c.maxEnd - c.lateness)
		return
	}
	c.judgeUntil(c.maxEnd)
	for k, g := range c.groups {
		c.held -= len(g.sensors)
		delete(c.groups, k)
	}
	c.aheadGroups = 0
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
		c.held -= len(g.sensors)
		delete(c.groups, k)
		c.judged = max(c.judged, g.end)
	}
	if until > c.judged {
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
		s.Sources.Merge(&o.Sources)
		s.HostsHLL.Merge(&o.HostsHLL)
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
		c.KeysCleared++
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

// Judged is the watermark: every interval ending at or before it (Unix
// ns) is judged; math.MinInt64 before the first.
func (c *Correlator) Judged() int64 { return c.judged }

// Pending is the number of key intervals waiting for the watermark.
func (c *Correlator) Pending() int { return len(c.groups) }

// addSlot adds one sensor's slot to the fleet's sum.
func addSlot(sum *detector.SlotCount, s detector.SlotCount) {
	sum.Packets += s.Packets
	sum.Bytes += s.Bytes
}
