// Package window provides Counter, a sliding-window packet and byte counter
// with sub-second buckets, driven by packet time. A rate over a one-second
// window built from 100 ms buckets reacts within one bucket of a flood's
// start instead of waiting for a whole second to close.
package window

import "time"

// Buckets is the number of buckets a window is split into.
const Buckets = 10

// Counter counts packets and bytes over the last Buckets buckets of a given
// width. The zero value is empty; it keeps no time of its own and is safe to
// copy.
type Counter struct {
	head    int64 // bucket index (time / width) of the newest bucket
	started bool
	hslot   uint8 // slot(head)
	pkts    [Buckets]uint32
	bytes   [Buckets]uint64
	sumPkts uint64
	sumByte uint64
}

// Add counts one packet of n bytes at packet time t (ns) with buckets of
// width ns.
func (c *Counter) Add(t, width int64, n int) { c.AddBucket(t/width, n) }

// AddBucket is Add for the packet time's bucket index idx (t / width),
// for callers that feed several counters of one width with one packet.
func (c *Counter) AddBucket(idx int64, n int) {
	if idx != c.head || !c.started { // a flood's packets mostly fall in the newest bucket: advance is skipped
		c.advance(idx)
	}
	i := c.hslot
	c.pkts[i]++
	c.bytes[i] += uint64(n)
	c.sumPkts++
	c.sumByte += uint64(n)
}

// AddBoth is AddBucket(idx, n) on c and on o: one call for a rule's two
// counters of one width that both count a packet (icmp_flood's any-ICMP
// and echo counts of an echo request).
func (c *Counter) AddBoth(o *Counter, idx int64, n int) {
	if idx != c.head || !c.started {
		c.advance(idx)
	}
	if idx != o.head || !o.started {
		o.advance(idx)
	}
	i, j := c.hslot, o.hslot
	c.pkts[i]++
	c.bytes[i] += uint64(n)
	c.sumPkts++
	c.sumByte += uint64(n)
	o.pkts[j]++
	o.bytes[j] += uint64(n)
	o.sumPkts++
	o.sumByte += uint64(n)
}

// SeedBucket moves the window to the bucket index head, then counts pkts
// packets of bytes bytes in the bucket idx, which may be up to Buckets-1
// buckets older than head: counts recorded elsewhere (e.g. by an estimate
// made before this counter existed) then leave the window when packets of
// that bucket would have. An idx newer than head or outside the window is
// ignored.
func (c *Counter) SeedBucket(head, idx int64, pkts uint32, bytes uint64) {
	c.advance(head)
	if idx > c.head || c.head-idx >= Buckets {
		return
	}
	i := slot(idx)
	c.pkts[i] += pkts
	c.bytes[i] += bytes
	c.sumPkts += uint64(pkts)
	c.sumByte += bytes
}

// Advance moves the window to packet time t without counting anything, so
// buckets that fell out of the window stop counting.
func (c *Counter) Advance(t, width int64) { c.advance(t / width) }

// AdvanceBucket is Advance for the bucket index idx (t / width).
func (c *Counter) AdvanceBucket(idx int64) {
	if idx != c.head || !c.started {
		c.advance(idx)
	}
}

func (c *Counter) advance(idx int64) {
	if !c.started {
		c.started, c.head, c.hslot = true, idx, uint8(slot(idx))
		return
	}
	switch {
	case idx == c.head:
	case idx > c.head && idx-c.head < Buckets:
		for c.head < idx {
			c.head++
			i := slot(c.head)
			c.sumPkts -= uint64(c.pkts[i])
			c.sumByte -= c.bytes[i]
			c.pkts[i], c.bytes[i] = 0, 0
		}
		c.hslot = uint8(slot(c.head))
	case idx > c.head:
		*c = Counter{started: true, head: idx, hslot: uint8(slot(idx))}
	case c.head-idx < Buckets:
		// slightly out of order: the packet still falls in the window;
		// count it with the newest bucket.
	default:
		// the clock went back by more than a window: start afresh
		*c = Counter{started: true, head: idx, hslot: uint8(slot(idx))}
	}
}

// Packets is the number of packets in the window.
func (c *Counter) Packets() uint64 { return c.sumPkts }

// Bytes is the number of bytes in the window.
func (c *Counter) Bytes() uint64 { return c.sumByte }

// Rates returns packets/s and bits/s over a window of length w.
func (c *Counter) Rates(w time.Duration) (pps, bps float64) { return c.RatesOver(w.Seconds()) }

// RatesOver is Rates for a window of s seconds (w.Seconds(), which a
// caller may compute once).
func (c *Counter) RatesOver(s float64) (pps, bps float64) {
	if s <= 0 {
		return 0, 0
	}
	// Through int64: the same value for any count below 2^63, and one
	// instruction where an unsigned conversion takes a branch and several.
	return float64(int64(c.sumPkts)) / s, float64(int64(c.sumByte)) * 8 / s
}

// slot is the ring position of bucket index idx. It is a floored modulo,
// in range for negative indexes too (packet times before 1970 give them).
func slot(idx int64) int {
	i := int(idx % Buckets)
	if i < 0 {
		i += Buckets
	}
	return i
}

// Bucket returns the packets and bytes the window holds in the bucket of
// index idx (time / width); 0 for a bucket outside the window. It reads
// without moving the window.
func (c *Counter) Bucket(idx int64) (pkts uint32, bytes uint64) {
	if !c.started || idx > c.head || c.head-idx >= Buckets {
		return 0, 0
	}
	i := slot(idx)
	return c.pkts[i], c.bytes[i]
}
