package rules

import (
	"encoding/binary"
	"net/netip"

	"github.com/icmpids/icmpids/detector/sketch"
)

// pendingWays is the associativity of the outstanding-request table.
const pendingWays = 4

// Bits of pendingWay.key.
const (
	pendUsed  = 1 << 63 // the way holds a request
	pendBcast = 1 << 62 // a broadcast request was seen: bcast[i] holds its time
	pendHash  = 1 << 61 // the key is a fingerprint (IPv6), not the exact key
	pendFP    = pendHash - 1
)

// pendingWay is one outstanding (host, echo id): 16 bytes, so a bucket of
// pendingWays ways is one 64-byte cache line.
//
// key identifies (host, id). An IPv4 host (or an IPv4-mapped IPv6 one,
// which the table has always treated as the same host) is stored exactly:
// the address in bits 16-47, the id in bits 0-15. Any other IPv6 host is
// stored as a 61-bit fingerprint of (host, id) with pendHash set: two
// different (host, id) of one bucket share a fingerprint with probability
// about 2^-61 per comparison, in which case a reply to one is taken as
// solicited by the other's request (and a request to one refreshes the
// other's entry). pendUsed marks a used way (a free way's key is 0),
// pendBcast that the request's broadcast time is in the parallel bcast
// array.
type pendingWay struct {
	key  uint64
	last int64 // packet time of the last request (ns)
}

// pendingSet is smurf's table of outstanding echo requests: a fixed array
// of buckets of pendingWays ways, the bucket chosen by a hash of (host,
// id). A request finds its way or takes a free or timed-out one in its
// bucket; when all are live, the one with the oldest request is evicted
// and counted. Every echo request of a spoofed flood is a new key: this
// costs a hash and one cache line, where a Go map paid an insert and a
// delete, and it never allocates after New.
//
// The time of the last broadcast request lives apart, in bcast (indexed
// like ways): it is read and written only for hosts that sent broadcast
// requests, so unicast requests, nearly all of them, touch one line.
// Times are full int64 packet times: comparisons are exact, whatever the
// clock does.
type pendingSet struct {
	ways    []pendingWay
	bcast   []int64 // time of the last broadcast request of ways[i] (0: never)
	buckets uint64
	assoc   int
	timeout int64 // a request older than this is timed out (ns)
	n       int   // ways in use
	evicted uint64
}

// newPendingSet holds at most capacity requests (capacity >= 1).
func newPendingSet(capacity int, timeout int64) *pendingSet {
	assoc := min(pendingWays, capacity)
	b := capacity / assoc
	return &pendingSet{
		ways:    make([]pendingWay, b*assoc),
		bcast:   make([]int64, b*assoc),
		buckets: uint64(b),
		assoc:   assoc,
		timeout: timeout,
	}
}

// locate returns the key of (host, id) and the index of its bucket's
// first way. The bucket is the one the table has always used (a hash of
// the 16-byte form of host, as sketch.HashAddr, and of id), so which
// requests share a bucket, and so evictions, are as before.
func (s *pendingSet) locate(host netip.Addr, id uint16) (key uint64, first int) {
	return s.locateHash(host, sketch.HashAddr(host), id)
}

// locateHash is locate for h = sketch.HashAddr(host) (Packet.SrcHash).
func (s *pendingSet) locateHash(host netip.Addr, h uint64, id uint16) (key uint64, first int) {
	if host.Is4() {
		// The 4 bytes, not As16 (a 16-byte reload of two 8-byte stores,
		// a store-forwarding stall): the same key as below.
		b4 := host.As4()
		key = pendUsed | uint64(binary.BigEndian.Uint32(b4[:]))<<16 | uint64(id)
	} else if b := host.As16(); binary.BigEndian.Uint64(b[:8]) == 0 && binary.BigEndian.Uint32(b[8:12]) == 0xffff {
		key = pendUsed | uint64(binary.BigEndian.Uint32(b[12:]))<<16 | uint64(id)
	} else {
		key = pendUsed | pendHash | sketch.Mix64(h^uint64(id)*0xc2b2ae3d27d4eb4f+0x165667b19e3779f9)&pendFP
	}
	h ^= uint64(id) * 0x9e3779b97f4a7c15
	h ^= h >> 29
	first = int((h&0xffffffff)*s.buckets>>32) * s.assoc
	return key, first
}

// touch records a request of (host, id) at packet time now, creating its
// entry if needed; bcast tells that it went to a broadcast address or group.
func (s *pendingSet) touch(host netip.Addr, id uint16, now int64, bcast bool) {
	k, first := s.locate(host, id)
	s.touchAt(k, first, now, bcast)
}

// touchAt is touch for the key and bucket locate returned.
func (s *pendingSet) touchAt(k uint64, first int, now int64, bcast bool) {
	b := s.ways[first : first+s.assoc]
	free, oldest := -1, -1
	for i := range b {
		w := &b[i]
		if w.key&^pendBcast == k {
			w.last = now
			if bcast {
				s.setBcast(first+i, now)
			}
			return
		}
		switch {
		case w.key == 0 || now-w.last > s.timeout: // free, or as good as free
			if free < 0 {
				free = i
			}
		case oldest < 0 || w.last < b[oldest].last:
			oldest = i
		}
	}
	i := free
	if i < 0 {
		i = oldest
		s.evicted++
	}
	w := &b[i]
	if w.key == 0 {
		s.n++
	}
	*w = pendingWay{key: k, last: now}
	if bcast {
		s.setBcast(first+i, now)
	}
}

// setBcast records a broadcast request at now in way i. A time of 0 reads
// as "never", as it always has.
func (s *pendingSet) setBcast(i int, now int64) {
	s.bcast[i] = now
	if now != 0 {
		s.ways[i].key |= pendBcast
	} else {
		s.ways[i].key &^= pendBcast
	}
}

// lookup returns the times of the last request and of the last broadcast
// request (0: none) of (host, id), and whether it has an entry.
func (s *pendingSet) lookup(host netip.Addr, id uint16) (last, lastBcast int64, ok bool) {
	k, first := s.locate(host, id)
	b := s.ways[first : first+s.assoc]
	for i := range b {
		if w := &b[i]; w.key&^pendBcast == k {
			if w.key&pendBcast != 0 {
				lastBcast = s.bcast[first+i]
			}
			return w.last, lastBcast, true
		}
	}
	return 0, 0, false
}

// sweep frees the entries whose last request is before before.
func (s *pendingSet) sweep(before int64) {
	for i := range s.ways {
		if w := &s.ways[i]; w.key != 0 && w.last < before {
			*w = pendingWay{}
			s.n--
		}
	}
}

func (s *pendingSet) Len() int        { return s.n }
func (s *pendingSet) Cap() int        { return len(s.ways) }
func (s *pendingSet) Evicted() uint64 { return s.evicted }
