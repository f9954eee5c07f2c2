package rules

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
)

var tunnelInfo = detector.RuleInfo{
	Name:        "icmp_tunnel",
	SignatureID: 9000011,
	Rev:         1,
	Signature:   "ICMP covert channel (tunnel in echo payloads)",
	Category:    "Potential Corporate Privacy Violation",
	Severity:    2,
}

// tunnelDefinition registers icmp_tunnel.
func tunnelDefinition() Definition {
	return define(tunnelInfo,
		"icmp_tunnel: a covert channel in ICMP echo between two hosts (ptunnel, hans, icmptunnel, icmpsh): echo replies whose data differs from their request's, payloads that are neither a ping tool's pattern nor a repeated fill, variable sizes. Target: the host sending the echo requests (the tunnel client).",
		map[string]string{
			"mismatches": "reply_mismatch: this many echo replies whose data differs from their request's (RFC 792: the reply returns the data; every ping tool and OS stack obeys it).",
			"payloads":   "payload_entropy: this many echo requests whose data is neither a known ping pattern (Linux/BSD timestamp + counting bytes, Windows' alphabet, a unit of up to 16 bytes repeated, zeros) nor the same as the request before; evidence from requests counts once the server answered or it spans 2 s.",
			"sizes":      "size_variance: this many distinct payload sizes (in 16-byte steps) among such requests of one pair.",
			"volume":     "volume: this many bytes of such payloads in one pair.",
			"hold_time":  "A tunnel is one attack until it has been idle this long: covert channels run at under a packet a second.",
			"max_pairs":  "Cap on (client, server) pairs tracked (about 200 bytes each). Pairs get state only past a 640 KiB admission sketch: once a reply differs from its request, or a second request carries new data no ping tool sends; least recently seen are evicted and counted.",
		},
		DefaultTunnelConfig,
		func(c TunnelConfig) (detector.Rule, error) { return NewTunnel(c), nil })
}

// TunnelConfig configures icmp_tunnel.
type TunnelConfig struct {
	Enabled    bool          `mapstructure:"enabled"`
	Mismatches int           `mapstructure:"mismatches"`
	Payloads   int           `mapstructure:"payloads"`
	Sizes      int           `mapstructure:"sizes"`
	Volume     int           `mapstructure:"volume"`
	HoldTime   time.Duration `mapstructure:"hold_time"`
	MaxPairs   int           `mapstructure:"max_pairs"`
}

// DefaultTunnelConfig returns icmp_tunnel's defaults.
func DefaultTunnelConfig() TunnelConfig {
	return TunnelConfig{Enabled: true, Mismatches: 3, Payloads: 20, Sizes: 6, Volume: 1 << 20, HoldTime: 10 * time.Minute, MaxPairs: 16384}
}

// Validate checks the settings; errors name the configuration key.
func (c TunnelConfig) Validate() error {
	k := newCheck(tunnelInfo.Name)
	k.count("mismatches", c.Mismatches, 1, 1_000_000)
	k.count("payloads", c.Payloads, 2, 1_000_000)
	k.count("sizes", c.Sizes, 2, 64)
	k.count("volume", c.Volume, 1024, 1<<40)
	k.duration("hold_time", c.HoldTime, time.Second, 24*time.Hour)
	k.count("max_pairs", c.MaxPairs, 1, 1<<22)
	return k.err()
}

// tunnelPair is the key of a pair: the host sending echo requests and the
// one answering.
type tunnelPair struct{ client, server netip.Addr }

// pendingEcho is a request whose reply has not been matched yet.
type pendingEcho struct {
	id, seq uint16
	// sum is the CRC-32C of the request's data; pre that of its first
	// fragPrefix bytes, when it has them (see echoPrint).
	sum, pre uint32
	n        uint16 // the data's length, at most 65,535
	frag     bool   // the request was a first fragment
	used     bool
}

// fragPrefix is how much of a fragmented echo's data a reply is compared
// by: the request and its reply may be fragmented at other sizes (each
// host's path MTU: ping6 of 1,500 bytes leaves as 1,448 + 60 and comes back
// as 1,288 + 220), so only the first bytes that both first fragments hold
// compare; IPv6 fragments hold at least 1,232 bytes, IPv4's on a 576-byte
// path 548.
const fragPrefix = 256

// echoPrint is what a reply is compared with: whole data by sum, or, when
// either side was a first fragment, the first fragPrefix bytes by pre
// (no verdict when either holds less).
type echoPrint struct {
	sum, pre uint32
	n        int
	frag     bool
}

// differs tells whether a reply's data (rep) is not its request's (req).
func (req echoPrint) differs(rep echoPrint) bool {
	if !req.frag && !rep.frag {
		return req.sum != rep.sum
	}
	return req.n >= fragPrefix && rep.n >= fragPrefix && req.pre != rep.pre
}

// tunnelState is what icmp_tunnel keeps of one pair: counts, never data.
type tunnelState struct {
	pending    [8]pendingEcho // the last requests' data checksums
	next       uint8
	lastSum    uint32 // the last request's data checksum
	mismatches uint32
	payloads   uint32 // requests with data no ping sends, differing from the one before
	sizes      uint64 // payload sizes seen, by 16-byte step (bit n: n*16..n*16+15)
	volume     uint64 // bytes of such payloads
	pktsOut    uint64 // requests, client → server
	pktsIn     uint64 // replies, server → client
	bytesOut   uint64
	bytesIn    uint64
	// firstData is the packet time of the pair's first request with data
	// no ping sends: one-way evidence counts once it spans tunnelSustain.
	firstData int64
	ids       [4]uint16
	nids      uint8
	signal    uint8
	last      int64
}

// tunnelSustain is how long a pair's one-way evidence (requests with data
// no ping sends, never answered) must span before it counts: a tunnel is a
// conversation, or an exchange that lasts; a spoofed flood's sources each
// send a burst, and its packets are the flood's once the flood is measured.
const tunnelSustain = 2 * time.Second

// Signals, in the order the alert names them.
const (
	sigReplyMismatch = iota + 1
	sigPayloadEntropy
	sigSizeVariance
	sigVolume
)

var tunnelSignals = [...]string{"", "reply_mismatch", "payload_entropy", "size_variance", "volume"}

// tunnelCell is a pair's cell of the admission sketch in front of the
// pair table (40 bytes): the last request of the pair holding it (its
// echo id and sequence, a fingerprint of its data and the salt of that
// fingerprint's samples), so that its reply is checked whatever the
// request looked like, and the pair's requests with data no ping sends
// (the last one's fingerprint, how many, since when). A pair gets a table
// entry once its reply differs from its request, or once a second request
// carries data no ping sends that differs from the first: a spoofed flood,
// a new pair per packet, costs a cell write, never an insertion and an
// eviction, and evicts nobody's state.
type tunnelCell struct {
	fp      uint32 // the pair's fingerprint; 0: empty
	id, seq uint16
	// sum and pre are dataPrints of the last request's data and of its
	// first fragPrefix bytes (see echoPrint), or, when kind is a ping
	// pattern's (patShort to patCount0, a whole message), its slot
	// (slotOf); n its length; salt the salt of their samples.
	sum, pre uint32
	n        uint16
	frag     bool
	answered bool  // a reply returned a request's data
	kind     uint8 // patNone: sum and pre are prints
	salt     uint32
	odd      uint32 // dataPrint of the last request with data no ping sends
	last     int32  // packet time of the last request, in seconds (mod 2^32)
	first    int32  // of the first odd request
	nodd     uint8
}

// tunnelCellBits sizes the sketch: 16 Ki cells of 40 bytes, 640 KiB.
const tunnelCellBits = 14

// tunnelCellFresh is how long a cell's request is matched with a reply
// and its odd requests add up, in seconds.
const tunnelCellFresh = 60

// Tunnel is the icmp_tunnel rule. It looks at echo data only: the bytes
// after the 8-byte echo header of requests and replies, tested in place
// for the patterns ping tools send (pingPattern: a constant number of
// steps whatever the size) and fingerprinted without a copy. An admission
// sketch (tunnelCell) holds each pair's last request until a pair shows
// more than one packet of a tunnel: a reply whose data differs from its
// request's, or a second request with new data no ping sends. Then the
// pair gets a table entry: its replies are checked against the last 8
// requests' CRC-32C checksums (same echo id and sequence), and it is
// reported when one of the signals reaches its level; evidence from
// requests alone (payloads, sizes, volume) counts once the pair has been
// answered or the evidence spans tunnelSustain. Requests the engine
// classifies as a flood's (p.Class.Flooded: towards a flooded host or
// prefix) are the flood's, not a tunnel's, unless their pair already has
// state (a fast tunnel is a flood of its server too).
// State is per pair, fixed-size and capped.
type Tunnel struct {
	cfg   TunnelConfig
	pairs *table.Table[tunnelPair, tunnelState]
	cells []tunnelCell
	// held has the bit of every pair in the table set (by its pairHash;
	// pairs evicted since the last sweep too): a request or reply whose
	// bit is clear has no state, and costs no table lookup.
	held  presence
	sweep sweepClock
}

// tunnelHeldBits sizes Tunnel.held: 128 Ki bits, 16 KiB (a full table of
// 16,384 pairs sets at most one bit in eight).
const tunnelHeldBits = 17

// NewTunnel returns the icmp_tunnel rule.
func NewTunnel(cfg TunnelConfig) *Tunnel {
	return &Tunnel{cfg: cfg, pairs: table.New[tunnelPair, tunnelState](cfg.MaxPairs, nil), cells: make([]tunnelCell, 1<<tunnelCellBits),
		held: newPresence(tunnelHeldBits)}
}

// Warm implements detector.Warmer: the admission cells.
func (r *Tunnel) Warm() { table.Prefault(r.cells); r.held.warm() }

// Info implements detector.Rule: its own hold time.
func (r *Tunnel) Info() detector.RuleInfo {
	i := tunnelInfo
	i.HoldTime = r.cfg.HoldTime
	return i
}

// Interest implements detector.Interested: echo requests and replies.
func (r *Tunnel) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.Types(0, 8), ICMPv6: detector.Types(128, 129)}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// echoData returns p's echo data and whether the rule looks at p: an echo
// message with its header (a whole one, or a first fragment: its data
// is what the fragment holds) to a unicast address.
func echoData(p *detector.Packet) ([]byte, bool) {
	if len(p.ICMPData) < 8 || (p.Fragment && p.FragOffset != 0) || p.DstMulticast() {
		return nil, false
	}
	return p.ICMPData[8:], true
}

// Observe implements detector.Rule.
func (r *Tunnel) Observe(p *detector.Packet, rep detector.Reporter) {
	if p.Class.Flooded && r.pairs.Len() == 0 {
		return // a flood's query, and no pair with state to read it for (see request)
	}
	if len(p.ICMPData) < 8 || (p.Fragment && p.FragOffset != 0) || p.DstMulticast() {
		return // as echoData
	}
	switch {
	case p.IsEchoRequest():
		if !p.SourceRemote {
			r.request(p, p.ICMPData[8:], rep)
		}
	case p.IsEchoReply():
		r.reply(p, p.ICMPData[8:], rep)
	}
}

// ObserveSource implements detector.SourceObserver: with several engines,
// the echo requests of a client this engine owns.
func (r *Tunnel) ObserveSource(p *detector.Packet, rep detector.Reporter) {
	if d, ok := echoData(p); ok && p.IsEchoRequest() {
		r.request(p, d, rep)
	}
}

// pairHash is the sketch hash of the pair (client, server).
func pairHash(client, server uint64) uint64 { return sketch.Mix64(client*0x9e3779b97f4a7c15 ^ server) }

// cellOf returns the sketch cell of a pair (h: pairHash) and the pair's
// fingerprint in it.
func (r *Tunnel) cellOf(h uint64) (*tunnelCell, uint32) {
	return &r.cells[h>>(64-tunnelCellBits)], uint32(h) | 1
}

func (r *Tunnel) request(p *detector.Packet, d []byte, rep detector.Reporter) {
	now := p.TimeNs
	h := pairHash(p.SrcHash(), p.DstHash())
	var s *tunnelState
	if r.held.mayHold(h) {
		s, _ = r.pairs.Touch(tunnelPair{p.Src, p.Dst}, now)
	}
	if s == nil && p.Class.Flooded {
		// A flooded host's or prefix's query from a pair that has shown
		// nothing of a tunnel: the flood's (icmp_flood,
		// icmp_carpet_flood). A tunnel with state goes on being read.
		return
	}
	salt := patternSalt(now, p.ICMPSeq)
	kind := pingPattern(d, salt)
	pattern := kind != patNone
	if s == nil {
		s = r.admitRequest(p, d, kind, salt, h)
		if s == nil {
			return
		}
	}
	sum := crc32.Checksum(d, castagnoli)
	s.last = now
	s.pktsOut++
	s.bytesOut += uint64(len(d))
	s.noteID(p.ICMPID)
	e := pendingEcho{id: p.ICMPID, seq: p.ICMPSeq, sum: sum, n: uint16(min(len(d), 0xffff)), frag: p.Fragment, used: true}
	if len(d) >= fragPrefix {
		e.pre = crc32.Checksum(d[:fragPrefix], castagnoli)
	}
	s.pending[s.next%8] = e
	s.next++
	if sum != s.lastSum && !pattern {
		s.countData(len(d), now)
	}
	s.lastSum = sum
	r.judge(s, p, rep)
}

// countData counts a request's n bytes of data no ping sends.
func (s *tunnelState) countData(n int, now int64) {
	if s.firstData == 0 {
		s.firstData = now
	}
	s.payloads++
	s.volume += uint64(n)
	s.sizes |= 1 << min(n/16, 63)
}

// admitRequest records a request of a pair without state in its sketch
// cell, and returns the pair's new table entry when this request admits
// it (a second request with new data no ping sends), else nil. kind is
// the data's pingPattern with salt (32 bits, patternSalt), h the pair's
// pairHash. A whole message of a ping pattern's but a repeated unit's
// is kept by its slot, without a print: its reply is checked against
// the pattern (patternEchoes).
func (r *Tunnel) admitRequest(p *detector.Packet, d []byte, kind uint8, salt, h uint64) *tunnelState {
	var sum, pre uint32
	k := kind
	if k == patNone || k == patUnit || p.Fragment {
		k = patNone
		sum, pre = echoPrints(d, salt)
	} else {
		sum, pre = slotOf(d, k)
	}
	n := uint16(min(len(d), 0xffff))
	c, fp := r.cellOf(h)
	sec := int32(p.TimeNs / 1e9)
	if c.fp != fp || sec-c.last > tunnelCellFresh {
		// The pair's first request in the cell (a spoofed flood's every
		// packet): the cell written once.
		*c = tunnelCell{fp: fp, id: p.ICMPID, seq: p.ICMPSeq, sum: sum, pre: pre, n: n, frag: p.Fragment, kind: k, salt: uint32(salt), last: sec}
		if kind == patNone {
			c.odd, c.nodd, c.first = sum, 1, sec
		}
		return nil
	}
	c.id, c.seq, c.salt, c.last = p.ICMPID, p.ICMPSeq, uint32(salt), sec
	c.sum, c.pre, c.n, c.frag, c.kind = sum, pre, n, p.Fragment, k
	if kind != patNone {
		return nil
	}
	print := c.sum
	if c.nodd == 0 {
		c.odd, c.nodd, c.first = print, 1, sec
		return nil
	}
	if print == c.odd {
		return nil // the same data again: a tool's constant payload
	}
	// The second request with new odd data: the pair gets state, with
	// what the cell knew (the first odd request's data is counted once).
	s, _ := r.pairs.Get(tunnelPair{p.Src, p.Dst}, p.TimeNs)
	r.held.add(h)
	*s = tunnelState{lastSum: ^uint32(0)}
	s.pktsOut = uint64(c.nodd)
	s.payloads = uint32(c.nodd)
	s.firstData = int64(c.first) * 1e9
	if c.answered {
		s.pktsIn = 1
	}
	*c = tunnelCell{}
	return s
}

func (r *Tunnel) reply(p *detector.Packet, d []byte, rep detector.Reporter) {
	h := pairHash(p.DstHash(), p.SrcHash())
	var s *tunnelState
	if r.held.mayHold(h) {
		s, _ = r.pairs.Lookup(tunnelPair{p.Dst, p.Src})
	}
	if s == nil {
		if s = r.admitReply(p, d, h); s == nil {
			return
		}
		r.judge(s, p, rep)
		return
	}
	s.last = p.TimeNs
	s.pktsIn++
	s.bytesIn += uint64(len(d))
	// The newest outstanding request with the reply's id and sequence.
	for k := 1; k <= 8; k++ {
		e := &s.pending[(int(s.next)-k+16)%8]
		if !e.used || e.id != p.ICMPID || e.seq != p.ICMPSeq {
			continue
		}
		e.used = false
		req := echoPrint{sum: e.sum, pre: e.pre, n: int(e.n), frag: e.frag}
		got := echoPrint{n: len(d), frag: p.Fragment}
		if !got.frag && !req.frag {
			got.sum = crc32.Checksum(d, castagnoli)
		} else if len(d) >= fragPrefix {
			got.pre = crc32.Checksum(d[:fragPrefix], castagnoli)
		}
		if req.differs(got) {
			s.mismatches++
		}
		break
	}
	r.judge(s, p, rep)
}

// admitReply checks a reply of a pair without state against the last
// request its sketch cell holds, and returns the pair's new table entry
// when the data differ (RFC 792: the reply returns the request's data),
// else nil.
// h is the pair's pairHash.
func (r *Tunnel) admitReply(p *detector.Packet, d []byte, h uint64) *tunnelState {
	c, fp := r.cellOf(h)
	if c.fp != fp || c.id != p.ICMPID || c.seq != p.ICMPSeq || int32(p.TimeNs/1e9)-c.last > tunnelCellFresh {
		return nil
	}
	// Whether the data differ: for a request of a ping pattern, by its
	// slot and the pattern (no print; a first fragment by its first
	// fragPrefix bytes, when both hold them), else as echoPrint.differs.
	var differs bool
	if c.kind != patNone {
		switch {
		case p.Fragment && (c.n < fragPrefix || len(d) < fragPrefix):
			// no verdict
		case p.Fragment:
			differs = !patternEchoes(d[:fragPrefix], c.kind, c.sum, c.pre, uint64(c.salt))
		default:
			differs = len(d) != int(c.n) || !patternEchoes(d, c.kind, c.sum, c.pre, uint64(c.salt))
		}
	} else {
		req := echoPrint{sum: c.sum, pre: c.pre, n: int(c.n), frag: c.frag}
		got := echoPrint{n: len(d), frag: p.Fragment}
		if !got.frag && !req.frag {
			got.sum = dataPrint(d, uint64(c.salt))
		} else if len(d) >= fragPrefix {
			got.pre = dataPrint(d[:fragPrefix], uint64(c.salt))
		}
		differs = req.differs(got)
	}
	if !differs {
		c.answered = true
		return nil
	}
	s, _ := r.pairs.Get(tunnelPair{p.Dst, p.Src}, p.TimeNs)
	r.held.add(h)
	*s = tunnelState{lastSum: ^uint32(0), mismatches: 1, pktsOut: 1, pktsIn: 1, bytesIn: uint64(len(d)), last: p.TimeNs}
	s.noteID(p.ICMPID)
	if c.nodd > 0 {
		s.payloads, s.firstData = uint32(c.nodd), int64(c.first)*1e9
	}
	*c = tunnelCell{}
	return s
}

// dataPrint is a fingerprint of echo data in a constant number of steps:
// its length and, up to printWhole bytes, every byte (a ping's usual 56);
// beyond, its first 32 bytes, its last 8 and four 8-byte words at
// positions drawn from salt (a request's, stored with the print, so that
// its reply is read at the same places). salt seeds the whole print, so
// data that collides with another's cannot be made without it.
func dataPrint(d []byte, salt uint64) uint32 {
	if len(d) <= printWhole {
		return wholePrint(d, salt)
	}
	return printTail(printHead(d, salt), d, salt)
}

// printWhole is the longest data dataPrint reads in full.
const printWhole = 64

// echoPrints is dataPrint of d and, when d holds fragPrefix bytes or
// more, of d[:fragPrefix] (else 0): the two share their first 32 bytes'
// steps.
func echoPrints(d []byte, salt uint64) (sum, pre uint32) {
	if len(d) <= printWhole {
		return wholePrint(d, salt), 0
	}
	h := printHead(d, salt)
	if len(d) >= fragPrefix {
		pre = printTailPrefix(h, (*[fragPrefix]byte)(d), salt)
	}
	return printTail(h, d, salt), pre
}

// wholePrint is dataPrint of data of at most printWhole bytes: every
// 8-byte word in turn, at fixed offsets in the usual 32 to 64 bytes (the
// last one overlapping the one before it, or zero-padded in data shorter
// than a word), then the length.
func wholePrint(d []byte, salt uint64) uint32 {
	h := sketch.Mix64(salt ^ 0x5851f42d4c957f2d)
	n := len(d)
	switch {
	case n >= 32:
		a := (*[32]byte)(d)
		h = printStep(h, binary.LittleEndian.Uint64(a[0:8]))
		h = printStep(h, binary.LittleEndian.Uint64(a[8:16]))
		h = printStep(h, binary.LittleEndian.Uint64(a[16:24]))
		h = printStep(h, binary.LittleEndian.Uint64(a[24:32]))
		// The up to 32 bytes after: whole words while more than a word
		// is left, then the last 8 bytes.
		if t := d[32:]; len(t) > 0 {
			if len(t) > 8 {
				h = printStep(h, binary.LittleEndian.Uint64(t[0:8]))
			}
			if len(t) > 16 {
				h = printStep(h, binary.LittleEndian.Uint64(t[8:16]))
			}
			if len(t) > 24 {
				h = printStep(h, binary.LittleEndian.Uint64(t[16:24]))
			}
			h = printStep(h, binary.LittleEndian.Uint64(d[n-8:]))
		}
	case n >= 8:
		for i := 0; i+8 < n; i += 8 {
			h = printStep(h, binary.LittleEndian.Uint64(d[i:]))
		}
		h = printStep(h, binary.LittleEndian.Uint64(d[n-8:]))
	default:
		var w [8]byte
		copy(w[:], d)
		h = printStep(h, binary.LittleEndian.Uint64(w[:]))
	}
	h = sketch.Mix64(h ^ uint64(n))
	return uint32(h ^ h>>32)
}

// printTailPrefix is printTail(h, d[:], salt), its positions worked out
// for fragPrefix bytes (no bounds to check).
func printTailPrefix(h uint64, d *[fragPrefix]byte, salt uint64) uint32 {
	const span = fragPrefix - 7
	h ^= fragPrefix
	h = printStep(h, binary.LittleEndian.Uint64(d[fragPrefix-8:]))
	x := salt*0x5851f42d4c957f2d + 0x14057b7ef767814f
	h = printStep(h, binary.LittleEndian.Uint64(d[min((x&0xffff)*span>>16, span-1):]))
	h = printStep(h, binary.LittleEndian.Uint64(d[min((x>>16&0xffff)*span>>16, span-1):]))
	h = printStep(h, binary.LittleEndian.Uint64(d[min((x>>32&0xffff)*span>>16, span-1):]))
	h = printStep(h, binary.LittleEndian.Uint64(d[min((x>>48)*span>>16, span-1):]))
	h = sketch.Mix64(h)
	return uint32(h ^ h>>32)
}

// printK is the odd multiplier of a print's steps.
const printK = 0x9e3779b97f4a7c15

// printStep folds the 8-byte word w into a print's state h.
func printStep(h, w uint64) uint64 { return bits.RotateLeft64((h^w)*printK, 29) }

// printHead is a print's state after d's first 32 bytes (fewer in
// shorter data, the last of them zero-padded to a word).
func printHead(d []byte, salt uint64) uint64 {
	h := sketch.Mix64(salt ^ 0x5851f42d4c957f2d)
	if len(d) >= 32 {
		h = printStep(h, binary.LittleEndian.Uint64(d[0:8]))
		h = printStep(h, binary.LittleEndian.Uint64(d[8:16]))
		h = printStep(h, binary.LittleEndian.Uint64(d[16:24]))
		return printStep(h, binary.LittleEndian.Uint64(d[24:32]))
	}
	i := 0
	for ; i+8 <= len(d); i += 8 {
		h = printStep(h, binary.LittleEndian.Uint64(d[i:]))
	}
	if i < len(d) {
		var w [8]byte
		copy(w[:], d[i:])
		h = printStep(h, binary.LittleEndian.Uint64(w[:]))
	}
	return h
}

// printTail ends a print begun by printHead over d: d's length and,
// beyond 32 bytes, its last 8 and four words at positions drawn from
// salt (16 bits of one step each).
func printTail(h uint64, d []byte, salt uint64) uint32 {
	n := len(d)
	h ^= uint64(n)
	if n > 32 {
		h = printStep(h, binary.LittleEndian.Uint64(d[n-8:]))
		span := uint64(n - 7)
		x := salt*0x5851f42d4c957f2d + 0x14057b7ef767814f
		h = printStep(h, binary.LittleEndian.Uint64(d[(x&0xffff)*span>>16:]))
		h = printStep(h, binary.LittleEndian.Uint64(d[(x>>16&0xffff)*span>>16:]))
		h = printStep(h, binary.LittleEndian.Uint64(d[(x>>32&0xffff)*span>>16:]))
		h = printStep(h, binary.LittleEndian.Uint64(d[(x>>48)*span>>16:]))
	}
	h = sketch.Mix64(h)
	return uint32(h ^ h>>32)
}

func (s *tunnelState) noteID(id uint16) {
	for _, v := range s.ids[:s.nids] {
		if v == id {
			return
		}
	}
	if s.nids < uint8(len(s.ids)) {
		s.ids[s.nids] = id
		s.nids++
	}
}

// judge reports the pair when a signal has reached its level.
func (r *Tunnel) judge(s *tunnelState, p *detector.Packet, rep detector.Reporter) {
	var sig uint8
	// Evidence from requests alone counts in a conversation (the server
	// answers) or once it has lasted.
	data := s.pktsIn > 0 || (s.firstData != 0 && p.TimeNs-s.firstData >= int64(tunnelSustain))
	switch {
	case s.mismatches >= uint32(r.cfg.Mismatches):
		sig = sigReplyMismatch
	case !data:
		return
	case s.payloads >= uint32(r.cfg.Payloads):
		sig = sigPayloadEntropy
	case s.payloads >= 3 && popcount(s.sizes) >= r.cfg.Sizes:
		sig = sigSizeVariance
	case s.volume >= uint64(r.cfg.Volume):
		sig = sigVolume
	default:
		return
	}
	if s.signal == 0 {
		s.signal = sig
	}
	client := p.Src
	if p.IsEchoReply() {
		client = p.Dst
	}
	rep.Hit(client, p, &detector.Measure{Level: detector.LevelFire})
}

// Tick implements detector.Rule: pairs idle for longer than the hold
// time leave the table.
func (r *Tunnel) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, time.Minute) {
		before := now.Add(-r.cfg.HoldTime - time.Minute).UnixNano()
		r.pairs.Sweep(func(_ tunnelPair, s *tunnelState, _ int64) bool { return s.last < before })
		// The bits of the pairs left, without those swept or evicted.
		r.held.reset()
		r.pairs.Range(func(k tunnelPair, _ *tunnelState) bool {
			r.held.add(pairHash(sketch.HashAddr(k.client), sketch.HashAddr(k.server)))
			return true
		})
	}
}

// Describe implements detector.Describer: the peer, packets and bytes
// each way, the echo ids, and the signal that fired first (the client's
// busiest tunnel, if it has several).
func (r *Tunnel) Describe(target netip.Addr, extra map[string]any) {
	var best *tunnelState
	var peer netip.Addr
	r.pairs.Range(func(k tunnelPair, s *tunnelState) bool {
		if k.client == target && s.signal != 0 && (best == nil || s.pktsOut+s.pktsIn > best.pktsOut+best.pktsIn) {
			best, peer = s, k.server
		}
		return true
	})
	if best == nil {
		return
	}
	extra["peer"] = peer
	extra["signal"] = tunnelSignals[best.signal]
	extra["packets_to_peer"] = best.pktsOut
	extra["packets_from_peer"] = best.pktsIn
	extra["bytes_to_peer"] = best.bytesOut
	extra["bytes_from_peer"] = best.bytesIn
	extra["reply_mismatches"] = uint64(best.mismatches)
	var ids []any
	for _, id := range best.ids[:best.nids] {
		ids = append(ids, id)
	}
	extra["echo_ids"] = ids
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// Tables implements detector.TableReporter.
func (r *Tunnel) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "icmp_tunnel.pairs", Len: r.pairs.Len(), Cap: r.pairs.Cap(), Evicted: r.pairs.Evicted()}}
}
