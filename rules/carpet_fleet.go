package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/window"
)

// carpetFleet is what JudgeFleet keeps between calls.
type carpetFleet struct {
	p detector.Packet
}

// FleetSlotWidth implements the engine's fleet reporting: the width of the
// window's buckets.
func (r *Carpet) FleetSlotWidth() time.Duration { return time.Duration(r.width) }

// FleetReport implements detector.FleetSource: every prefix with an exact
// window (admitted at 1/8 of the start level) whose echo or any-ICMP rate
// over the n buckets before until is at least floor times its start level
// is reported with those buckets, its host bitmap and its top hosts. It
// walks the prefix table (bounded by max_prefixes) once per interval. From
// its first call on, the rule counts each prefix's distinct sources and
// hosts (two register updates per packet it counts), sent with the next
// report and then cleared.
func (r *Carpet) FleetReport(until int64, n int, floor float64, o *detector.Observation, report func(*detector.Observation)) {
	r.fleetOn = true
	secs := float64(n) * float64(r.width) / 1e9
	r.prefixes.Range(func(net netip.Addr, e *carpetPrefix) bool {
		defer e.srcs.Reset()
		defer e.hostRegs.Reset()
		if !e.multi {
			return true
		}
		if !fillSlots(o, &e.echo, &e.any, until, n, floor*r.cfg.EchoPPS*secs, floor*r.cfg.AnyPPS*secs) {
			return true
		}
		_, bits, _ := r.prefixOf(net)
		o.Rule, o.Key, o.Bits = carpetInfo.Name, net, bits
		o.SlotWidth, o.FirstSlot, o.Slots = time.Duration(r.width), until-int64(n), n
		o.Hosts = e.union()
		o.TopHosts = o.TopHosts[:0]
		for _, t := range e.top.Top(topTargets, 0) {
			o.TopHosts = append(o.TopHosts, detector.SourceCount{Addr: t.Key, Packets: t.Count})
		}
		o.HostTotal = e.total
		o.Sources, o.HostsHLL = e.srcs, e.hostRegs
		report(o)
		return true
	})
}

// JudgeFleet implements detector.FleetJudge: slot i of o, the fleet's sums
// for the prefix o.Key, goes into the prefix's windows, its host bitmap
// and top hosts replace the prefix's, and the prefix is judged as Observe
// judges it: the same start and stop levels, min_hosts and max_host_share.
// The fleet's host registers (the sensors' union) raise the prefix's peak
// host count where they count far more than the bitmap (a /64 carpet).
func (r *Carpet) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	idx := o.FirstSlot + int64(i)
	now := (idx + 1) * r.width
	e, created := r.prefixes.Get(o.Key, now)
	if created {
		*e = carpetPrefix{multi: true, sole: o.Key}
	}
	e.any.SeedBucket(idx, idx, o.Any[i].Packets, o.Any[i].Bytes)
	e.echo.SeedBucket(idx, idx, o.Echo[i].Packets, o.Echo[i].Bytes)
	e.hosts = [2]hostBitmap{hostBitmap(o.Hosts), {}}
	e.unionSet = e.hosts[0].set()
	e.epoch = now / r.windowNs
	e.top = sketch.TopK[netip.Addr]{}
	for _, t := range o.TopHosts {
		e.top.AddHash(t.Addr, sketch.HashAddr(t.Addr), t.Packets) // the hash Observe feeds it with
	}
	e.topMax = e.top.MaxCount()
	e.total = o.HostTotal
	if e.echo.Packets() > 0 {
		e.trigger = triggerEcho
	}
	m := r.judge(e)
	if m == nil || o.Any[i].Packets == 0 {
		return
	}
	// The bitmap is exact to a few percent up to a /24's hosts and
	// saturates near 3,200; the registers, at 13 %, count on past it:
	// they raise the peak only where they count more than their error
	// allows the bitmap to be off (a /64 carpet over many hosts).
	if h := float64(o.HostsHLL.Estimate()); h > 1.39*e.peak {
		e.peak = h
	}
	p := &r.fleet.p
	fleetPacket(p, o, i, now)
	rep.HitMany(o.Key, p, m, uint64(o.Any[i].Packets), o.Any[i].Bytes)
}

// fillSlots copies the n buckets before until of echo and any into o and
// tells whether either holds at least its floor of packets.
func fillSlots(o *detector.Observation, echo, any *window.Counter, until int64, n int, echoFloor, anyFloor float64) bool {
	var pe, pa uint64
	for i := 0; i < n; i++ {
		ep, eb := echo.Bucket(until - int64(n) + int64(i))
		ap, ab := any.Bucket(until - int64(n) + int64(i))
		o.Echo[i] = detector.SlotCount{Packets: ep, Bytes: eb}
		o.Any[i] = detector.SlotCount{Packets: ap, Bytes: ab}
		pe += uint64(ep)
		pa += uint64(ap)
	}
	return float64(pe) >= echoFloor || float64(pa) >= anyFloor
}

// fleetPacket makes the packet a fleet slot's hit stands on: the slot's
// end, toward o.Key, an echo request of the slot's mean size, no source.
func fleetPacket(p *detector.Packet, o *detector.Observation, i int, now int64) {
	*p = detector.Packet{Time: time.Unix(0, now).UTC(), TimeNs: now, Dst: o.Key, HasICMP: true,
		WireLen: int(o.Any[i].Bytes / uint64(o.Any[i].Packets))}
	if o.Key.Is4() {
		p.Proto, p.ICMPType = detector.ProtoICMPv4, 8
	} else {
		p.Proto, p.ICMPType, p.IPv6 = detector.ProtoICMPv6, 128, true
	}
}
