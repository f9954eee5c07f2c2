package rules

import (
	"net/netip"

	"github.com/icmpids/icmpids/detector/sketch"
)

// pendingWays is the associativity of the outstanding-request table.
const pendingWays = 4

// pendingSlot is one outstanding (host, echo id) and its times.
type pendingSlot struct {
	host [16]byte
	id   uint16
	used bool
	pendingReq
}

// pendingSet is smurf's table of outstanding echo requests: a fixed array
// of buckets of pendingWays slots, the bucket chosen by a hash of (host,
// id). A request finds its slot or takes a free or timed-out one in its
// bucket; when all are live, the one with the oldest request is evicted
// and counted. Every echo request of a spoofed flood is a new key: this
// costs a hash and one bucket's cache lines, where a Go map paid an
// insert and a delete, and it never allocates after New.
type pendingSet struct {
	slots   []pendingSlot
	buckets uint64
	ways    int
	timeout int64 // a request older than this is timed out (ns)
	n       int   // slots in use
	evicted uint64
}

// newPendingSet holds at most capacity requests (capacity >= 1).
func newPendingSet(capacity int, timeout int64) *pendingSet {
	ways := min(pendingWays, capacity)
	b := capacity / ways
	return &pendingSet{slots: make([]pendingSlot, b*ways), buckets: uint64(b), ways: ways, timeout: timeout}
}

func (s *pendingSet) bucket(host [16]byte, id uint16) []pendingSlot {
	h := sketch.HashAddr(netip.AddrFrom16(host)) ^ uint64(id)*0x9e3779b97f4a7c15
	h ^= h >> 29
	i := int((h & 0xffffffff) * s.buckets >> 32)
	return s.slots[i*s.ways : (i+1)*s.ways]
}

// touch returns the entry of (host, id), creating it at packet time now.
func (s *pendingSet) touch(host netip.Addr, id uint16, now int64) *pendingReq {
	k := host.As16()
	b := s.bucket(k, id)
	free, oldest := -1, -1
	for i := range b {
		sl := &b[i]
		if sl.used && sl.host == k && sl.id == id {
			return &sl.pendingReq
		}
		switch {
		case !sl.used || now-sl.last > s.timeout: // free, or as good as free
			if free < 0 {
				free = i
			}
		case oldest < 0 || sl.last < b[oldest].last:
			oldest = i
		}
	}
	var sl *pendingSlot
	if free >= 0 {
		sl = &b[free]
	} else {
		sl = &b[oldest]
		s.evicted++
	}
	if !sl.used {
		s.n++
	}
	*sl = pendingSlot{host: k, id: id, used: true}
	return &sl.pendingReq
}

// lookup returns the entry of (host, id) without creating it.
func (s *pendingSet) lookup(host netip.Addr, id uint16) (*pendingReq, bool) {
	k := host.As16()
	b := s.bucket(k, id)
	for i := range b {
		if sl := &b[i]; sl.used && sl.host == k && sl.id == id {
			return &sl.pendingReq, true
		}
	}
	return nil, false
}

// sweep frees the entries whose last request is before before.
func (s *pendingSet) sweep(before int64) {
	for i := range s.slots {
		if sl := &s.slots[i]; sl.used && sl.last < before {
			*sl = pendingSlot{}
			s.n--
		}
	}
}

func (s *pendingSet) Len() int        { return s.n }
func (s *pendingSet) Cap() int        { return len(s.slots) }
func (s *pendingSet) Evicted() uint64 { return s.evicted }
