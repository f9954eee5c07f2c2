package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// FleetSlotWidth implements the engine's fleet reporting: the width of the
// window's buckets.
func (r *FragFlood) FleetSlotWidth() time.Duration { return time.Duration(r.width) }

// FleetReport implements detector.FleetSource: every target whose trains
// opened less those completed over the n buckets before until are at
// least floor times the start level is reported with those buckets
// (TrainsOpened, TrainsCompleted). It walks the target table (bounded by
// max_targets) once per interval. From its first call on, the rule counts
// each target's distinct sources (one register update per tracked
// fragment), sent with the next report and then cleared.
func (r *FragFlood) FleetReport(until int64, n int, floor float64, o *detector.Observation, report func(*detector.Observation)) {
	r.fleetOn = true
	least := floor * r.cfg.TrainsPPS * float64(n) * float64(r.width) / 1e9
	r.targets.Range(func(dst netip.Addr, t *fragFloodTarget) bool {
		defer t.srcs.Reset()
		var opened, completed uint64
		for i := 0; i < n; i++ {
			idx := until - int64(n) + int64(i)
			op, ob := t.opened.Bucket(idx)
			cp, cb := t.completed.Bucket(idx)
			o.TrainsOpened[i] = detector.SlotCount{Packets: op, Bytes: ob}
			o.TrainsCompleted[i] = detector.SlotCount{Packets: cp, Bytes: cb}
			opened += uint64(op)
			completed += uint64(cp)
		}
		if opened <= completed || float64(opened-completed) < least {
			return true
		}
		o.Rule, o.Key, o.Bits = fragFloodInfo.Name, dst, dst.BitLen()
		o.SlotWidth, o.FirstSlot, o.Slots = time.Duration(r.width), until-int64(n), n
		o.Hosts, o.TopHosts, o.HostTotal = [8]uint64{}, o.TopHosts[:0], 0
		o.Sources = t.srcs
		report(o)
		return true
	})
}

// JudgeFleet implements detector.FleetJudge: slot i of o, the fleet's
// trains opened and completed toward o.Key, goes into the target's
// windows, which are judged as Observe judges them: the same start and
// stop levels of incomplete trains. The hit stands for the slot's opened
// trains (a fleet frag_flood counts trains, not every fragment).
func (r *FragFlood) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	if int64(o.SlotWidth) != r.width {
		return // another window than this rule's: its slots are not ours
	}
	idx := o.FirstSlot + int64(i)
	now := (idx + 1) * r.width
	t, _ := r.targets.Get(o.Key, now)
	op, cp := o.TrainsOpened[i], o.TrainsCompleted[i]
	t.opened.SeedBucket(idx, idx, op.Packets, op.Bytes)
	t.completed.SeedBucket(idx, idx, cp.Packets, cp.Bytes)
	m := r.judge(t)
	if m == nil || op.Packets == 0 {
		return
	}
	p := &r.fleetP
	fleetSlotPacket(p, o.Key, now, op)
	p.Frag.Tracked, p.Frag.NewTrain = true, true
	rep.HitMany(o.Key, p, m, uint64(op.Packets), op.Bytes)
}
