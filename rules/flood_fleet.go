package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// FleetSlotWidth implements the engine's fleet reporting: the width of the
// window's buckets.
func (f *Flood) FleetSlotWidth() time.Duration { return time.Duration(f.width) }

// FleetReport implements detector.FleetSource: every target with an exact
// window (admitted at 1/8 of the lowest start level) whose echo or
// any-ICMP packet rate over the n buckets before until is at least floor
// times its start level is reported with those buckets. It walks the
// target table (bounded by max_targets) once per interval. From its first
// call on, the rule counts each target's distinct sources (one register
// update per packet of an exact window), sent with the next report and
// then cleared.
func (f *Flood) FleetReport(until int64, n int, floor float64, o *detector.Observation, report func(*detector.Observation)) {
	f.fleetOn = true
	secs := float64(n) * float64(f.width) / 1e9
	f.targets.Range(func(dst netip.Addr, t *floodTarget) bool {
		if fillSlots(o, &t.echo, &t.any, until, n, floor*f.cfg.EchoPPS*secs, floor*f.cfg.AnyPPS*secs) {
			o.Rule, o.Key, o.Bits = floodInfo.Name, dst, dst.BitLen()
			o.SlotWidth, o.FirstSlot, o.Slots = time.Duration(f.width), until-int64(n), n
			o.Hosts, o.TopHosts, o.HostTotal = [8]uint64{}, o.TopHosts[:0], 0
			o.Sources = t.srcs
			report(o)
		}
		t.srcs.Reset()
		return true
	})
}

// JudgeFleet implements detector.FleetJudge: slot i of o, the fleet's sums
// for the target o.Key, goes into the target's windows, which are judged
// as Observe judges them: the same start and stop levels.
func (f *Flood) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	idx := o.FirstSlot + int64(i)
	now := (idx + 1) * f.width
	t, _ := f.targets.Get(o.Key, now)
	t.any.SeedBucket(idx, idx, o.Any[i].Packets, o.Any[i].Bytes)
	t.echo.SeedBucket(idx, idx, o.Echo[i].Packets, o.Echo[i].Bytes)
	m := f.judge(t)
	if m == nil || o.Any[i].Packets == 0 {
		return
	}
	p := &f.fleetP
	fleetPacket(p, o, i, now)
	rep.HitMany(o.Key, p, m, uint64(o.Any[i].Packets), o.Any[i].Bytes)
}
