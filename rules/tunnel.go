package rules

import (
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
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
			"payloads":   "payload_entropy: this many echo requests whose data is neither a known ping pattern (Linux/BSD timestamp + counting bytes, Windows' alphabet, a repeated pattern of up to 16 bytes, zeros) nor the same as the request before.",
			"sizes":      "size_variance: this many distinct payload sizes (in 16-byte steps) among such requests of one pair.",
			"volume":     "volume: this many bytes of such payloads in one pair.",
			"hold_time":  "A tunnel is one attack until it has been idle this long: covert channels run at under a packet a second.",
			"max_pairs":  "Cap on (client, server) pairs tracked (about 200 bytes each). Pairs get state only once they carry data no ping tool sends; least recently seen are evicted and counted.",
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
	sum     uint32
	used    bool
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
	ids        [4]uint16
	nids       uint8
	signal     uint8
	last       int64
}

// Signals, in the order the alert names them.
const (
	sigReplyMismatch = iota + 1
	sigPayloadEntropy
	sigSizeVariance
	sigVolume
)

var tunnelSignals = [...]string{"", "reply_mismatch", "payload_entropy", "size_variance", "volume"}

// Tunnel is the icmp_tunnel rule. It looks at echo data only: the bytes
// after the 8-byte echo header of requests and replies, tested in place
// for the patterns ping tools send (a few comparisons a packet for a
// ping: its pattern is recognised at once) and summed with CRC-32C (no
// copy). A pair (client, server) gets state once a request carries data
// no ping tool sends; then its replies are checked against the last 8
// requests' checksums (same echo id and sequence), and the pair is
// reported when one of the signals reaches its level. State is per pair,
// fixed-size and capped.
type Tunnel struct {
	cfg   TunnelConfig
	pairs *table.Table[tunnelPair, tunnelState]
	sweep sweepClock
}

// NewTunnel returns the icmp_tunnel rule.
func NewTunnel(cfg TunnelConfig) *Tunnel {
	return &Tunnel{cfg: cfg, pairs: table.New[tunnelPair, tunnelState](cfg.MaxPairs, nil)}
}

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

// windowsPing is the data Windows' ping sends, repeated.
const windowsPing = "abcdefghijklmnopqrstuvwabcdefghi"

// pingPattern tells whether d, echo data, is what a ping tool sends: at
// most 8 bytes; a counting pattern after a timestamp of up to 16 bytes
// (Linux, BSD, macOS: byte i is i); Windows' alphabet; or, after up to 16
// bytes of timestamp, one pattern of 1 to 16 bytes repeated (ping -p, a
// fill such as hping3's or fping's zeros).
func pingPattern(d []byte) bool {
	if len(d) <= 8 {
		return true
	}
	counting := true
	i := 16
	// Eight bytes at a time while no byte of the word wraps past 255.
	for ; i+8 <= len(d) && i&0xff <= 248; i += 8 {
		if binary.LittleEndian.Uint64(d[i:]) != 0x0706050403020100+uint64(i&0xff)*0x0101010101010101 {
			counting = false
			break
		}
	}
	for ; counting && i < len(d); i++ {
		if d[i] != byte(i) {
			counting = false
		}
	}
	if counting && len(d) > 16 {
		return true
	}
	if len(d) > 8 {
		win := true
		for i := range d {
			if d[i] != windowsPing[i%len(windowsPing)] {
				win = false
				break
			}
		}
		if win {
			return true
		}
	}
	for _, start := range [2]int{0, 16} {
		body := d[min(start, len(d)):]
		if len(body) == 0 {
			continue
		}
		for p := 1; p <= 16 && p < len(body); p++ {
			ok := true
			for i := p; i < len(body); i++ {
				if body[i] != body[i-p] {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// Observe implements detector.Rule.
func (r *Tunnel) Observe(p *detector.Packet, rep detector.Reporter) {
	if p.Fragment || len(p.ICMPData) < 8 || p.Dst.IsMulticast() {
		return
	}
	switch {
	case p.IsEchoRequest() && !p.SourceRemote:
		r.request(p, rep)
	case p.IsEchoReply():
		r.reply(p, rep)
	}
}

// ObserveSource implements detector.SourceObserver: with several engines,
// the echo requests of a client this engine owns.
func (r *Tunnel) ObserveSource(p *detector.Packet, rep detector.Reporter) {
	if !p.Fragment && len(p.ICMPData) >= 8 && !p.Dst.IsMulticast() && p.IsEchoRequest() {
		r.request(p, rep)
	}
}

func (r *Tunnel) request(p *detector.Packet, rep detector.Reporter) {
	d := p.ICMPData[8:]
	now := p.TimeNs
	key := tunnelPair{p.Src, p.Dst}
	pattern := pingPattern(d)
	var s *tunnelState
	if pattern {
		// A ping's request costs no lookup unless pairs are tracked at
		// all (a flood of pings never touches the table).
		if r.pairs.Len() == 0 {
			return
		}
		var ok bool
		if s, ok = r.pairs.Touch(key, now); !ok {
			return
		}
	} else {
		var ok bool
		if s, ok = r.pairs.Touch(key, now); !ok {
			s, _ = r.pairs.Get(key, now)
			*s = tunnelState{}
		}
	}
	sum := crc32.Checksum(d, castagnoli)
	s.last = now
	s.pktsOut++
	s.bytesOut += uint64(len(d))
	s.noteID(p.ICMPID)
	s.pending[s.next%8] = pendingEcho{id: p.ICMPID, seq: p.ICMPSeq, sum: sum, used: true}
	s.next++
	if sum != s.lastSum && !pattern {
		s.payloads++
		s.volume += uint64(len(d))
		s.sizes |= 1 << min(len(d)/16, 63)
	}
	s.lastSum = sum
	r.judge(s, p, rep)
}

func (r *Tunnel) reply(p *detector.Packet, rep detector.Reporter) {
	if r.pairs.Len() == 0 {
		return
	}
	s, ok := r.pairs.Lookup(tunnelPair{p.Dst, p.Src})
	if !ok {
		return
	}
	d := p.ICMPData[8:]
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
		if crc32.Checksum(d, castagnoli) != e.sum {
			s.mismatches++
		}
		break
	}
	r.judge(s, p, rep)
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
	switch {
	case s.mismatches >= uint32(r.cfg.Mismatches):
		sig = sigReplyMismatch
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
