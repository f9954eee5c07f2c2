package rules

import (
	"math"

	"github.com/icmpids/icmpids/detector/window"
)

// admitBits sets the most cells of icmp_flood's admission filter (a power
// of two: a cell is picked by the top bits of the destination's hash):
// 64 Ki cells of 10 bytes, 640 KiB, for the default table cap. The filter
// shrinks with its rule's table cap (by powers of two, down to
// 2^minAdmitBits): an engine that owns a share of the targets
// (Config.PerEngine) sees that share of the destinations, and its cells
// fill as one engine's would.
const (
	admitBits    = 16
	minAdmitBits = 12
)

// admitBitsFor is the filter's size in bits for a table cap of capacity
// where the default cap is full.
func admitBitsFor(capacity, full int) uint8 {
	b := admitBits
	for b > minAdmitBits && capacity*2 <= full {
		b--
		capacity *= 2
	}
	return uint8(b)
}

// admitFraction is the admission level as a fraction of icmp_flood's
// lowest start levels: a target gets an exact window once its estimated
// rate reaches 1/8 of min(echo_pps, any_pps) or of min(echo_bps, any_bps).
// With a stop_ratio below 1/2 the fraction shrinks to stop_ratio/4, so the
// admission level always stays well below the stop level.
const admitFraction = 1.0 / 8

// admitMaxUnits bounds the admission level in counting units: a level the
// 16-bit cells cannot hold with room to spare (e.g. a very long window or
// very high start levels) turns the filter off, and every target gets an
// exact window at its first packet, as without a filter.
const admitMaxUnits = 1 << 14

// admitCell counts one hash bucket of destinations over tumbling windows of
// the flood window's length (epoch: the window's number, mod 2^16). Index
// 0 of cur and prev counts every ICMP message, index 1 echo requests only;
// counts are in units (admitter.weight) and saturate.
type admitCell struct {
	epoch     uint16
	cur, prev [2]uint16
}

// admitter is icmp_flood's admission filter: a fixed array of small
// tumbling-window counters indexed by a hash of the destination, in front
// of the exact per-target table. Every ICMP packet to a target without an
// exact window is counted in its cell; the target is admitted (given an
// exact window) once the cell's estimate over the last window reaches the
// admission level. The estimate is the current tumbling window's count plus
// the previous one's, scaled by the share of the previous window that still
// lies in the sliding window (the usual sliding-window approximation; exact
// for a steady rate). Targets sharing a cell add up, and an idle cell's
// epoch can alias after 2^16 windows: both only overestimate, so a target
// is admitted earlier, never later. A busy sensor sees many destinations at
// a packet or so per second (the generator's mix: ~160 K of them); they now
// cost one cell update each instead of an insertion into, and an eviction
// from, the exact table.
type admitter struct {
	cells []admitCell
	shift uint8  // 64 - the filter's bits
	level uint32 // admission level in units per window; 0: filter off
	unit  int    // bytes per unit beyond the first (>= 1)
}

func newAdmitter(cfg FloodConfig, bits uint8) admitter {
	frac := math.Min(admitFraction, cfg.StopRatio/4)
	secs := cfg.Window.Seconds()
	pkts := math.Ceil(math.Min(cfg.EchoPPS, cfg.AnyPPS) * frac * secs)
	byts := math.Min(cfg.EchoBPS, cfg.AnyBPS) * frac * secs / 8
	if !(pkts > 1 && pkts <= admitMaxUnits) {
		return admitter{} // off
	}
	// A packet of n bytes weighs 1 + n/unit units: unit = byts/pkts makes
	// a window holding at least byts bytes, or at least pkts packets, hold
	// at least pkts units.
	unit := int(math.Min(byts/pkts, math.MaxInt32))
	return admitter{cells: make([]admitCell, 1<<bits), shift: 64 - bits, level: uint32(pkts), unit: max(unit, 1)}
}

// weight is the number of units a packet of n bytes counts for.
func (a *admitter) weight(n int) uint32 {
	return uint32(min(1+n/a.unit, math.MaxUint16))
}

func addSat(c uint16, w uint32) uint16 { return uint16(min(uint32(c)+w, math.MaxUint16)) }

// observe counts a packet of n bytes to dst in bucket idx (packet time /
// bucket width) and reports whether dst reaches the admission level. When
// it does, the cell's earlier counts are moved into seed (index 0 every
// ICMP message, 1 echo requests; the packet itself not included) and the
// cell is cleared, so targets sharing it do not inherit them.
// h is the key's sketch.HashAddr.
func (a *admitter) observe(h uint64, idx int64, n int, echo bool, seed *admitSeed) bool {
	c := &a.cells[h>>a.shift]
	ep := idx / window.Buckets
	switch uint16(ep) - c.epoch {
	case 0, math.MaxUint16: // this window, or a packet slightly out of order
	case 1:
		c.epoch, c.prev, c.cur = uint16(ep), c.cur, [2]uint16{}
	default:
		*c = admitCell{epoch: uint16(ep)}
	}
	w := a.weight(n)
	// buckets of this tumbling window up to and including idx (1..Buckets)
	in := idx - ep*window.Buckets + 1
	if in < 1 || in > window.Buckets {
		in = window.Buckets
	}
	est := uint32(c.cur[0]) + w + uint32(int64(c.prev[0])*(window.Buckets-in)/window.Buckets)
	if est < a.level {
		c.cur[0] = addSat(c.cur[0], w)
		if echo {
			c.cur[1] = addSat(c.cur[1], w)
		}
		return false
	}
	*seed = admitSeed{in: in, w: w, cur: c.cur, prev: c.prev}
	c.cur, c.prev = [2]uint16{}, [2]uint16{}
	return true
}

// admitSeed is what a cell held when its target was admitted.
type admitSeed struct {
	in        int64  // buckets of the current tumbling window up to the packet's
	w         uint32 // the admitted packet's weight
	cur, prev [2]uint16
}

// fill seeds a new exact counter (kind 0: every ICMP message, 1: echo
// requests) at bucket idx with the cell's estimate, spread the way a steady
// rate would have put it: the current tumbling window's count evenly over
// its buckets up to idx, and the previous window's share still in the
// sliding window at a tenth of that window's count per older bucket.
// Units are turned back into packets by the admitted packet's weight, and
// into bytes by its length n (a flood's packets are mostly of one size).
// The seeded packets leave the exact window when packets sent at a steady
// rate would have, so the measured rate lacks nothing from before
// admission and, for a steady rate, holds nothing extra.
func (s *admitSeed) fill(c *window.Counter, kind int, idx int64, n int) {
	cur := int64(s.cur[kind]) / int64(s.w)
	old := window.Buckets - s.in
	prev := int64(s.prev[kind]) * old / window.Buckets / int64(s.w)
	if cur == 0 && prev == 0 {
		return
	}
	for k := int64(0); k < window.Buckets; k++ {
		var pk int64
		if k < s.in { // idx-k is in the current tumbling window
			pk = cur / s.in
			if k < cur%s.in { // the remainder goes to the newest buckets
				pk++
			}
		} else {
			j := k - s.in // 0..old-1
			pk = prev / old
			if j < prev%old {
				pk++
			}
		}
		if pk > 0 {
			c.SeedBucket(idx, idx-k, uint32(pk), uint64(pk)*uint64(n))
		}
	}
}
