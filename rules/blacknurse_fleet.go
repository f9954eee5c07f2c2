package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/window"
)

// FleetSlotWidth implements the engine's fleet reporting: the width of the
// window's buckets.
func (r *BlackNurse) FleetSlotWidth() time.Duration { return time.Duration(r.width) }

// FleetReport implements detector.FleetSource: every host whose rate of
// port unreachables over the n buckets before until is at least floor
// times the start level is reported with those buckets (PortUnreach). It
// walks the host table (bounded by max_targets) once per interval. From
// its first call on, the rule counts each host's distinct sources (one
// register update per packet), sent with the next report and then
// cleared.
func (r *BlackNurse) FleetReport(until int64, n int, floor float64, o *detector.Observation, report func(*detector.Observation)) {
	r.fleetOn = true
	least := floor * r.cfg.PPS * float64(n) * float64(r.width) / 1e9
	r.targets.Range(func(dst netip.Addr, t *blackNurseTarget) bool {
		defer t.srcs.Reset()
		if !fillClass(&o.PortUnreach, &t.c, until, n, least) {
			return true
		}
		o.Rule, o.Key, o.Bits = blackNurseInfo.Name, dst, dst.BitLen()
		o.SlotWidth, o.FirstSlot, o.Slots = time.Duration(r.width), until-int64(n), n
		o.Hosts, o.TopHosts, o.HostTotal = [8]uint64{}, o.TopHosts[:0], 0
		o.Sources = t.srcs
		report(o)
		return true
	})
}

// JudgeFleet implements detector.FleetJudge: slot i of o, the fleet's
// port unreachables to the host o.Key, goes into the host's window, which
// is judged as Observe judges it: the same start and stop levels.
func (r *BlackNurse) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	if int64(o.SlotWidth) != r.width {
		return // another window than this rule's: its slots are not ours
	}
	idx := o.FirstSlot + int64(i)
	now := (idx + 1) * r.width
	t, _ := r.targets.Get(o.Key, now)
	s := o.PortUnreach[i]
	t.c.SeedBucket(idx, idx, s.Packets, s.Bytes)
	m := r.judge(&t.c)
	if m == nil || s.Packets == 0 {
		return
	}
	p := &r.fleetP
	fleetSlotPacket(p, o.Key, now, s)
	p.HasICMP = true
	if p.IPv6 {
		p.ICMPType, p.ICMPCode = icmpmsg.V6DestUnreach, 4
	} else {
		p.ICMPType, p.ICMPCode = icmpmsg.V4DestUnreach, 3
	}
	rep.HitMany(o.Key, p, m, uint64(s.Packets), s.Bytes)
}

// fillClass copies the n buckets before until of c into slots and tells
// whether they hold at least least packets.
func fillClass(slots *[detector.FleetSlots]detector.SlotCount, c *window.Counter, until int64, n int, least float64) bool {
	var sum uint64
	for i := 0; i < n; i++ {
		pk, b := c.Bucket(until - int64(n) + int64(i))
		slots[i] = detector.SlotCount{Packets: pk, Bytes: b}
		sum += uint64(pk)
	}
	return float64(sum) >= least
}

// fleetSlotPacket makes the packet a fleet slot's hit stands on: the
// slot's end, toward key, of the slot's mean size, no source; IPv4 or
// IPv6 with key (the caller sets what the rule counts: ICMP type, code).
func fleetSlotPacket(p *detector.Packet, key netip.Addr, now int64, s detector.SlotCount) {
	*p = detector.Packet{Time: time.Unix(0, now).UTC(), TimeNs: now, Dst: key}
	if s.Packets > 0 {
		p.WireLen = int(s.Bytes / uint64(s.Packets))
	}
	if key.Is4() {
		p.Proto = detector.ProtoICMPv4
	} else {
		p.Proto, p.IPv6 = detector.ProtoICMPv6, true
	}
}
