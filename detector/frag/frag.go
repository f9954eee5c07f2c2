// Package frag tracks IP fragment trains without reassembling them. For
// each train — (src, dst, IP id, protocol) for IPv4, (src, dst,
// identification) for IPv6 — it keeps the byte ranges seen (with a CRC of
// each fragment's data, never the data itself), the first fragment's header
// length and ICMP type, the largest end and the end the last fragment
// declares. From that it tells, per fragment, whether the train is new,
// complete, oversized (its reassembly would exceed 65,535 bytes), carries
// conflicting overlaps, or starts with a first fragment too short for its
// upper-layer header.
//
// State is bounded: at most MaxTrains trains, each a fixed-size value of
// about 280 bytes with no pointers, found through an open-addressing index
// of a seeded hash (8 bytes a position; positions: the power of two at or
// above twice MaxTrains at most),
// both grown as trains arrive; a train times out Timeout after its first
// fragment (packet time); when the table is full the oldest train is
// evicted. Timeouts and evictions are counted. In steady state Observe does
// not allocate.
package frag

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MaxDatagram is the largest IP datagram (IPv4 total length) or IPv6
// payload a reassembly may produce; one byte more is an oversized
// reassembly (Ping of Death).
const MaxDatagram = 65535

// MaxSpans is how many byte ranges a train keeps. Fragments are recorded
// one span each while there is room, so an exact duplicate can be told from
// conflicting data; when the spans are full the lowest contiguous pair is
// merged, and when none is contiguous the new range is not recorded (the
// train is marked overflowed and can no longer complete).
const MaxSpans = 16

// Config configures the tracker.
type Config struct {
	// Timeout is how long (packet time) a train may take to complete,
	// counted from its first fragment, like the kernel's ipfrag_time.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxTrains caps the trains tracked at once; the oldest is evicted to
	// make room for a new one.
	MaxTrains int `mapstructure:"max_trains"`
}

// DefaultConfig returns the tracker defaults: 60 s timeout, 65,536 trains
// (about 20 MB at most, table and index; none until fragments arrive).
func DefaultConfig() Config {
	return Config{Timeout: 60 * time.Second, MaxTrains: 65536}
}

// Validate checks the settings; errors name the configuration key
// (engine.frag.*).
func (c Config) Validate() error {
	var errs []error
	if c.Timeout < time.Second || c.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("engine.frag.timeout: %v is out of range [1s, 10m]", c.Timeout))
	}
	if c.MaxTrains < 1 || c.MaxTrains > 1<<22 {
		errs = append(errs, fmt.Errorf("engine.frag.max_trains: %d is out of range [1, 4194304]", c.MaxTrains))
	}
	return errors.Join(errs...)
}

// Fragment is what the tracker needs of one IP fragment.
type Fragment struct {
	// Time is the packet time in nanoseconds.
	Time int64
	// IPv6 tells the family; Src, Dst and ID (IPv4 id or IPv6
	// identification) and, for IPv4, Proto form the train's key.
	IPv6     bool
	Src, Dst netip.Addr
	ID       uint32
	// Proto is the upper-layer protocol: IPv4's protocol field; for IPv6
	// the protocol after the extension headers in a first fragment, the
	// fragment header's next header otherwise.
	Proto uint8
	// Offset and Len are the fragment's position and data length in
	// bytes (Len by the header's length fields); More is the MF flag.
	Offset, Len int
	More        bool
	// HeaderLen is the IP header length before the fragmentable part
	// (IPv4 IHL*4; IPv6 40 plus unfragmentable extension headers).
	HeaderLen int
	// UpperOff is, in a first fragment, the bytes of extension headers
	// between the IPv6 fragment header and the upper-layer header (0 for
	// IPv4).
	UpperOff int
	// ChainIncomplete: an IPv6 first fragment whose extension-header chain
	// runs on into the next fragment; it is tiny whatever its protocol.
	ChainIncomplete bool
	// Sum is a checksum of the fragment's captured data: equal ranges with
	// different sums carry conflicting data.
	Sum uint32
	// HasICMP, ICMPType and Echo describe the ICMP header a first fragment
	// carries (Echo: it is an echo request).
	HasICMP  bool
	ICMPType uint8
	Echo     bool
}

// Conflict says how a train's fragments conflict.
type Conflict uint8

// Conflict kinds.
const (
	ConflictNone      Conflict = iota
	ConflictOverlap            // two fragments overlap with different ranges
	ConflictData               // the same range arrived twice with different data
	ConflictPastEnd            // data lies past the end the last fragment declared
	ConflictEnd                // two last fragments declare different ends
	ConflictUnchecked          // overlaps a merged range whose fragments are no longer known
)

var conflictRank = [...]uint8{ConflictNone: 0, ConflictUnchecked: 1, ConflictPastEnd: 2, ConflictEnd: 3, ConflictOverlap: 4, ConflictData: 5}

var conflictNames = [...]string{"none", "overlap", "different_data", "past_end", "end_mismatch", "overlap_merged"}

// String returns the conflict's stable snake_case name.
func (c Conflict) String() string {
	if int(c) < len(conflictNames) {
		return conflictNames[c]
	}
	return "unknown"
}

// Verdict is the tracker's finding for one fragment. The one-shot flags
// (Oversize, Overlap, Tiny) are true at most once per train.
type Verdict struct {
	// Tracked is set when the fragment belongs to a tracked train (false
	// for atomic IPv6 fragments, offset 0 without MF, which RFC 6946 says
	// to process alone).
	Tracked bool
	// NewTrain: this fragment opened a train. Completed: it completed
	// one (every byte from 0 to the last fragment's end seen); the train
	// is then remembered for DoneLinger, to absorb duplicates.
	NewTrain, Completed bool
	// Duplicate: an exact repeat (same range, same data) of a fragment
	// already seen; it changes nothing.
	Duplicate bool
	// Oversize: the reassembly crosses MaxDatagram at this fragment.
	Oversize bool
	// Overlap: the train's first conflict, of kind Conflict.
	Overlap  bool
	Conflict Conflict
	// Tiny: a first fragment too short to hold its upper-layer header
	// (ICMP/ICMPv6 and UDP 8 bytes, TCP 20); TinyLen is the bytes it has.
	Tiny    bool
	TinyLen int
	// FirstSeen: the train's first fragment (offset 0) has been seen;
	// FirstEcho: it was an ICMP/ICMPv6 echo request; ICMPType its type.
	FirstSeen, FirstEcho bool
	ICMPType             uint8
	// ICMP: the train is ICMP (IPv4 protocol 1) or ICMPv6 (58); Proto is
	// its protocol (the first fragment's upper-layer protocol once seen).
	ICMP  bool
	Proto uint8
	// Size is the reassembled size so far by the largest end seen: IPv4
	// header length + largest end (total length); for IPv6 the payload
	// length, unfragmentable extension headers + largest end. The header
	// length is the first fragment's once seen, this fragment's before.
	Size int
	// Frags is the number of fragments the train has had (duplicates
	// included).
	Frags int
}

// Stats are the tracker's counters.
type Stats struct {
	Len, Cap  int    // trains held now (completed ones lingering included), and the cap
	Trains    uint64 // trains opened
	Completed uint64 // trains completed
	Evicted   uint64 // trains evicted to make room (oldest first)
	Timeouts  uint64 // trains that timed out incomplete
	Overflows uint64 // fragments not recorded because a train's spans were full
	Atomic    uint64 // atomic fragments (not tracked)
}

type key struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool
}

// span is a byte range [start, end) of a train; end's top bit marks a
// merged span, whose fragments (and sums) are no longer known.
type span struct {
	start, end, sum uint32
}

const mergedBit = 1 << 31

func (s span) stop() uint32 { return s.end &^ mergedBit }
func (s span) merged() bool { return s.end&mergedBit != 0 }
func (s *span) setStop(e uint32, merged bool) {
	s.end = e
	if merged {
		s.end |= mergedBit
	}
}

// train flags.
const (
	fFirst uint8 = 1 << iota
	fEcho
	fICMPType
	fOversize
	fOverlap
	fTiny
	fOverflow
	fDone
)

// DoneLinger is how long a completed train is remembered (at most the
// timeout), so that a duplicate of its fragments is recognised as one
// instead of opening a new train. A fragment that is not an exact
// duplicate starts a new train in its place (the id was reused).
const DoneLinger = 2 * time.Second

// train is one tracked train: its head, and its spans, of which only the
// first n are ever read (a slot is reused by setting its head alone).
type train struct {
	trainHead
	spans [MaxSpans]span
}

type trainHead struct {
	key         key
	hash        uint32 // the key's index hash
	first, last int64  // first fragment (open) or completion (done); last fragment
	prev, next  int32
	maxEnd      int32
	lastEnd     int32 // end declared by a last fragment (MF clear), -1 if none seen
	frags       uint32
	hdrLen      uint16
	proto       uint8
	icmpType    uint8
	flags       uint8
	n           uint8 // spans held
}

// Tracker tracks fragment trains. It is not safe for concurrent use.
type Tracker struct {
	cfg     Config
	timeout int64
	linger  int64
	index   index
	slab    []train
	free    []int32
	open    list  // incomplete trains, oldest first fragment first
	done    list  // completed trains, oldest completion first
	newest  int64 // latest packet time seen
	stats   Stats
}

// list is a doubly linked list of trains through their prev/next indexes.
type list struct{ head, tail int32 }

// New returns a tracker; cfg must be valid.
func New(cfg Config) *Tracker {
	// The slab and the index are allocated at the first fragment, for
	// warmTrains trains, and grow from there up to MaxTrains: an engine
	// that sees no fragment costs no table.
	return &Tracker{
		cfg:     cfg,
		timeout: int64(cfg.Timeout),
		index:   newIndex(cfg.MaxTrains),
		linger:  min(int64(DoneLinger), int64(cfg.Timeout)),
		open:    list{-1, -1},
		done:    list{-1, -1},
	}
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	s := t.stats
	s.Len, s.Cap = t.index.n, t.cfg.MaxTrains
	return s
}

// Len is the number of trains held.
func (t *Tracker) Len() int { return t.index.n }

// Expire drops trains whose timeout has run out at packet time now (ns) and
// returns how many. Observe calls it; the engine also calls it on ticks.
func (t *Tracker) Expire(now int64) int {
	if now > t.newest {
		t.newest = now
	}
	n := 0
	for t.open.head >= 0 && now-t.slab[t.open.head].first >= t.timeout {
		t.remove(t.open.head)
		t.stats.Timeouts++
		n++
	}
	for t.done.head >= 0 && now-t.slab[t.done.head].first >= t.linger {
		t.remove(t.done.head)
	}
	return n
}

// Reset drops every train: the engine's clock jumped back, and trains from
// the later time would neither time out nor stay apart from unrelated
// fragments with the same id. Dropped incomplete trains count as timeouts.
func (t *Tracker) Reset() {
	for t.open.head >= 0 {
		t.remove(t.open.head)
		t.stats.Timeouts++
	}
	for t.done.head >= 0 {
		t.remove(t.done.head)
	}
	t.newest = 0
}

// Observe records one fragment and returns the verdict on it.
func (t *Tracker) Observe(f *Fragment) Verdict {
	now := f.Time
	if now < t.newest-t.timeout {
		// Packet time jumped back by more than a timeout (a new capture
		// file): the trains held belong to another time.
		t.Reset()
		t.newest = now
	}
	t.Expire(now)

	start, flen := f.Offset, f.Len
	if flen < 0 {
		flen = 0
	}
	end := start + flen
	if start == 0 && !f.More {
		t.stats.Atomic++
		return Verdict{Proto: f.Proto, ICMP: isICMP(f.IPv6, f.Proto), Size: f.HeaderLen - v6Base(f.IPv6) + end, Frags: 1,
			FirstSeen: true, FirstEcho: f.Echo, ICMPType: f.ICMPType}
	}
	var v Verdict
	v.Tracked = true

	k := key{src: f.Src.As16(), dst: f.Dst.As16(), id: f.ID, v6: f.IPv6}
	if !f.IPv6 {
		k.proto = f.Proto
	}
	h := t.index.hash(&k)
	i := t.index.find(t.slab, &k, h)
	ok := i >= 0
	if ok && t.slab[i].flags&fDone != 0 {
		if t.isDuplicate(&t.slab[i], start, end, f.Sum) {
			tr := &t.slab[i]
			v.Duplicate = true
			v.Size = int(tr.hdrLen) - v6Base(f.IPv6) + int(tr.maxEnd)
			v.Frags = int(tr.frags)
			v.FirstSeen, v.FirstEcho, v.ICMPType = true, tr.flags&fEcho != 0, tr.icmpType
			v.Proto, v.ICMP = tr.proto, isICMP(f.IPv6, tr.proto)
			return v
		}
		t.remove(i) // the id was reused: a new datagram
		ok = false
	}
	if !ok {
		i = t.alloc(k, h, now)
		t.slab[i].proto = f.Proto
		v.NewTrain = true
		t.stats.Trains++
	}
	tr := &t.slab[i]
	tr.last = now
	if tr.frags < ^uint32(0) {
		tr.frags++
	}

	if start == 0 {
		if tr.flags&fFirst == 0 {
			tr.flags |= fFirst
			tr.hdrLen = uint16(min(f.HeaderLen, 0xffff))
			tr.proto = f.Proto
			if f.HasICMP {
				tr.flags |= fICMPType
				tr.icmpType = f.ICMPType
				if f.Echo {
					tr.flags |= fEcho
				}
			}
		}
		if f.More && tr.flags&fTiny == 0 {
			if need := upperHeaderLen(f.IPv6, f.Proto); f.ChainIncomplete || need > 0 && flen-f.UpperOff < need {
				tr.flags |= fTiny
				v.Tiny, v.TinyLen = true, max(flen-f.UpperOff, 0)
				if f.ChainIncomplete {
					v.TinyLen = 0 // not even the upper-layer header starts here
				}
			}
		}
	}

	// Conflicts, strongest first: different data in the same range, an
	// overlap, two different ends, data past the end, an overlap with a
	// merged range.
	conflict := ConflictNone
	worse := func(c Conflict) {
		if conflict == ConflictNone || conflictRank[c] > conflictRank[conflict] {
			conflict = c
		}
	}
	if !f.More {
		switch {
		case tr.lastEnd >= 0 && int(tr.lastEnd) != end:
			worse(ConflictEnd)
		case int(tr.maxEnd) > end:
			worse(ConflictPastEnd)
		}
		if tr.lastEnd < 0 {
			tr.lastEnd = int32(end)
		}
	} else if tr.lastEnd >= 0 && end > int(tr.lastEnd) {
		worse(ConflictPastEnd)
	}

	dup := false
	if flen > 0 {
		s, e := uint32(start), uint32(end)
		for j := 0; j < int(tr.n); j++ {
			sp := tr.spans[j]
			if sp.start >= e {
				break // spans are sorted by start
			}
			if sp.stop() <= s {
				continue
			}
			switch {
			case sp.merged():
				worse(ConflictUnchecked)
			case sp.start == s && sp.stop() == e && sp.sum == f.Sum:
				dup = true
			case sp.start == s && sp.stop() == e:
				worse(ConflictData)
			default:
				worse(ConflictOverlap)
			}
		}
		if dup && conflict == ConflictNone {
			v.Duplicate = true
		} else if !dup {
			t.insert(tr, span{start: s, end: e, sum: f.Sum})
		}
		if end > int(tr.maxEnd) {
			tr.maxEnd = int32(end)
		}
	}

	hdr := f.HeaderLen
	if tr.flags&fFirst != 0 {
		hdr = int(tr.hdrLen)
	}
	v.Size = hdr - v6Base(f.IPv6) + int(tr.maxEnd)
	if v.Size > MaxDatagram && tr.flags&fOversize == 0 {
		tr.flags |= fOversize
		v.Oversize = true
	}
	if conflict != ConflictNone && tr.flags&fOverlap == 0 {
		tr.flags |= fOverlap
		v.Overlap, v.Conflict = true, conflict
	}
	v.Frags = int(tr.frags)
	v.FirstSeen = tr.flags&fFirst != 0
	v.FirstEcho = tr.flags&fEcho != 0
	v.ICMPType = tr.icmpType
	v.Proto = tr.proto
	v.ICMP = isICMP(f.IPv6, tr.proto)

	if tr.flags&(fFirst|fOverflow) == fFirst && tr.lastEnd >= 0 && covered(tr) {
		v.Completed = true
		t.stats.Completed++
		t.unlink(i)
		tr.flags |= fDone
		tr.first = now
		t.link(&t.done, i)
	}
	return v
}

// isDuplicate tells whether [start, end) with sum is exactly one of tr's
// recorded fragments.
func (t *Tracker) isDuplicate(tr *train, start, end int, sum uint32) bool {
	for j := 0; j < int(tr.n); j++ {
		sp := tr.spans[j]
		if !sp.merged() && int(sp.start) == start && int(sp.stop()) == end && sp.sum == sum {
			return true
		}
	}
	return false
}

func v6Base(v6 bool) int {
	if v6 {
		return 40
	}
	return 0
}

func isICMP(v6 bool, proto uint8) bool {
	if v6 {
		return proto == 58
	}
	return proto == 1
}

// upperHeaderLen is the header a first fragment must hold whole: 8 bytes
// for ICMP, ICMPv6 and UDP, 20 for TCP; 0 (no check) for other protocols.
func upperHeaderLen(v6 bool, proto uint8) int {
	switch {
	case proto == 6:
		return 20
	case proto == 17, isICMP(v6, proto):
		return 8
	}
	return 0
}

// insert adds s to tr's sorted spans, merging to make room when full.
func (t *Tracker) insert(tr *train, s span) {
	if int(tr.n) == MaxSpans && !mergeOne(tr) {
		tr.flags |= fOverflow
		t.stats.Overflows++
		return
	}
	j := int(tr.n)
	for j > 0 && tr.spans[j-1].start > s.start {
		tr.spans[j] = tr.spans[j-1]
		j--
	}
	tr.spans[j] = s
	tr.n++
}

// mergeOne merges the lowest pair of touching or overlapping neighbours
// into one merged span and reports whether it found one.
func mergeOne(tr *train) bool {
	for j := 0; j+1 < int(tr.n); j++ {
		a, b := tr.spans[j], tr.spans[j+1]
		if a.stop() >= b.start {
			tr.spans[j].setStop(max(a.stop(), b.stop()), true)
			tr.spans[j].sum = 0
			copy(tr.spans[j+1:], tr.spans[j+2:tr.n])
			tr.n--
			tr.spans[tr.n] = span{}
			return true
		}
	}
	return false
}

// covered tells whether tr's spans cover [0, lastEnd) without a hole.
func covered(tr *train) bool {
	var c uint32
	for j := 0; j < int(tr.n); j++ {
		sp := tr.spans[j]
		if sp.start > c {
			return false
		}
		c = max(c, sp.stop())
	}
	return c >= uint32(tr.lastEnd)
}

func (t *Tracker) alloc(k key, h uint32, now int64) int32 {
	if t.index.n >= t.cfg.MaxTrains {
		if t.done.head >= 0 {
			t.remove(t.done.head) // a completed train is the cheapest to forget
		} else if t.open.head >= 0 {
			t.remove(t.open.head)
			t.stats.Evicted++
		}
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if len(t.slab) == cap(t.slab) {
			nc := min(max(2*cap(t.slab), warmTrains), t.cfg.MaxTrains)
			s := make([]train, len(t.slab), nc)
			copy(s, t.slab)
			t.slab = s
		}
		t.slab = t.slab[:len(t.slab)+1]
		i = int32(len(t.slab) - 1)
	}
	t.slab[i].trainHead = trainHead{key: k, hash: h, first: now, last: now, lastEnd: -1}
	t.link(&t.open, i)
	t.index.insert(h, i)
	return i
}

// link appends train i to l.
func (t *Tracker) link(l *list, i int32) {
	tr := &t.slab[i]
	tr.prev, tr.next = l.tail, -1
	if l.tail >= 0 {
		t.slab[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

// unlink takes train i out of its list.
func (t *Tracker) unlink(i int32) {
	tr := &t.slab[i]
	l := &t.open
	if tr.flags&fDone != 0 {
		l = &t.done
	}
	if tr.prev >= 0 {
		t.slab[tr.prev].next = tr.next
	} else {
		l.head = tr.next
	}
	if tr.next >= 0 {
		t.slab[tr.next].prev = tr.prev
	} else {
		l.tail = tr.prev
	}
	tr.prev, tr.next = -1, -1
}

func (t *Tracker) remove(i int32) {
	t.unlink(i)
	tr := &t.slab[i]
	t.index.remove(tr.hash, i)
	tr.n = 0 // its spans are void (alloc sets the rest)
	t.free = append(t.free, i)
}
