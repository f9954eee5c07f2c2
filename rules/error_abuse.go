package rules

import (
	"math/bits"
	"net/netip"
	"sort"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

var errorAbuseInfo = detector.RuleInfo{
	Name:        "icmp_error_abuse",
	SignatureID: 9000017,
	Rev:         1,
	Signature:   "ICMP forged or abusive error messages",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// errorAbuseDefinition registers icmp_error_abuse.
func errorAbuseDefinition() Definition {
	return define(errorAbuseInfo,
		"icmp_error_abuse: ICMP/ICMPv6 errors that cannot be genuine or that attack the connections they quote: a packet-too-big below the minimum MTU or about a packet that fit, a quote its receiver never sent or that is no IP header, an error about an error, a source quench, and storms of hard errors over guessed TCP ports (blind reset, RFC 5927).",
		map[string]string{
			"min_mtu":         "IPv4 fragmentation-needed claiming a next-hop MTU below this is forged (Linux's min_pmtu is 552; RFC 791's floor is 68). An MTU of 0 is the pre-RFC 1191 form and no evidence. IPv6's floor is 1280, fixed by RFC 8200.",
			"count":           "quote_mismatch and malformed_quote need this many errors to one host within window (a lone odd error is no attack); the other reasons start an attack at once.",
			"reset_ports":     "reset_storm: hard errors (port/protocol unreachable, ICMPv6 port unreachable) quoting TCP to one host over at least reset_ports distinct quoted source ports of that host, at reset_pps or more over reset_window. A scanner meeting a REJECTing firewall varies the destination port, not its own source port.",
			"max_hosts":       "Cap on receiving hosts tracked; least recently seen are evicted and counted.",
			"trust_reporters": "Sources (e.g. your own routers) whose errors are never counted.",
		},
		DefaultErrorAbuseConfig,
		func(c ErrorAbuseConfig) (detector.Rule, error) { return NewErrorAbuse(c), nil })
}

// ErrorAbuseConfig configures icmp_error_abuse.
type ErrorAbuseConfig struct {
	Enabled        bool          `mapstructure:"enabled"`
	MinMTU         int           `mapstructure:"min_mtu"`
	Count          int           `mapstructure:"count"`
	Window         time.Duration `mapstructure:"window"`
	ResetPorts     int           `mapstructure:"reset_ports"`
	ResetPPS       float64       `mapstructure:"reset_pps"`
	ResetWindow    time.Duration `mapstructure:"reset_window"`
	MaxHosts       int           `mapstructure:"max_hosts"`
	TrustReporters []string      `mapstructure:"trust_reporters"`
}

// DefaultErrorAbuseConfig returns icmp_error_abuse's defaults.
func DefaultErrorAbuseConfig() ErrorAbuseConfig {
	return ErrorAbuseConfig{
		Enabled:     true,
		MinMTU:      552,
		Count:       3,
		Window:      time.Minute,
		ResetPorts:  64,
		ResetPPS:    50,
		ResetWindow: 2 * time.Second,
		MaxHosts:    16384,
	}
}

// Validate checks the settings; errors name the configuration key.
func (c ErrorAbuseConfig) Validate() error {
	k := newCheck(errorAbuseInfo.Name)
	k.count("min_mtu", c.MinMTU, 68, 1500)
	k.count("count", c.Count, 1, 1_000_000)
	k.duration("window", c.Window, time.Second, time.Hour)
	k.count("reset_ports", c.ResetPorts, 2, errPortBits/2)
	k.positive("reset_pps", c.ResetPPS)
	k.duration("reset_window", c.ResetWindow, 100*time.Millisecond, time.Minute)
	k.count("max_hosts", c.MaxHosts, 1, 1<<24)
	k.addrs("trust_reporters", c.TrustReporters)
	return k.err()
}

// The reasons an error is evidence, in the order the alert lists them.
const (
	reasonMTUBelowMin = iota
	reasonPTBNotTooBig
	reasonQuoteMismatch
	reasonMalformedQuote
	reasonErrorAboutError
	reasonSourceQuench
	reasonResetStorm
	numErrReasons
)

var errReasonNames = [numErrReasons]string{
	"mtu_below_minimum", "ptb_not_too_big", "quote_mismatch", "malformed_quote",
	"error_about_error", "source_quench", "reset_storm",
}

// errPortBits is the size of a host's distinct-quoted-port bitmap.
const errPortBits = 1024

type portBitmap [errPortBits / 64]uint64

// errHost is what icmp_error_abuse keeps of one receiving host.
type errHost struct {
	// counted and countStart: quote_mismatch and malformed_quote errors in
	// the tumbling window that began at countStart.
	counted    uint32
	countStart int64
	// reasons counts every reason since the host's state was made.
	reasons [numErrReasons]uint64
	mtus    [4]uint32 // distinct claimed MTUs (0: empty slot)
	quoted  quoteSample
	// hard counts hard errors quoting TCP; ports[epoch&1] the distinct
	// quoted source ports per reset_window-long epoch; union the bits
	// set in either (kept as bits are set, counted afresh when an epoch
	// clears one: a storm's every error no longer counts 1,024 bits).
	hard  window.Counter
	ports [2]portBitmap
	union int
	epoch int64
	last  int64
}

// quoteSample is the packet a recent offending error quoted.
type quoteSample struct {
	src, dst         netip.Addr
	proto            uint8
	sport, dport     uint16
	length           int
	hasPorts, filled bool
}

// errReporter is what icmp_error_abuse keeps of one reporter (the source
// of errors with an immediate reason): its first receiver, whether it
// sprays, and the error it holds back.
type errReporter struct {
	last  int64      // its last immediate error (Unix ns)
	first netip.Addr // its first receiver since it was quiet for window
	spray bool       // it reached a second receiver: one spray attack
	// held is the ring slot + 1 of its error held back (0: none), valid
	// while that slot's gen is heldGen.
	held    int32
	heldGen uint32
}

// errSpray is a spraying reporter's evidence, for its attack's context.
type errSpray struct {
	receivers sketch.HLL
	reasons   [numErrReasons]uint64
	mtus      [4]uint32
	quoted    quoteSample
	last      int64
}

// heldErr is an error held back (see ErrorAbuse): the packet as the
// tracker needs it (no message bytes) and the reasons it carried.
type heldErr struct {
	pkt     detector.Packet
	reasons uint32
	mtu     uint32
	quoted  quoteSample
	gen     uint32
	live    bool
}

// errHeldMax bounds the errors held back at once; one more releases the
// oldest at once. errSprayMax caps the spraying reporters tracked.
const (
	errHeldMax  = 256
	errSprayMax = 1024
)

// errSettle is how long the first forged error of a reporter is held
// back: a second receiver within it makes it the start of one spray
// attack; otherwise it starts the receiver's own attack then, stamped
// with its own time.
const errSettle = time.Second

// ErrorAbuse is the icmp_error_abuse rule. For every ICMP error (IPv4
// types 3, 4, 11, 12; ICMPv6 1–4) it reads the claimed MTU and the quoted
// packet's header from the message (package icmpmsg; no copy) and judges
// it by the reasons of the contract. One attack per receiving host: a
// single error starts it for the reasons no genuine error can have
// (mtu_below_minimum, ptb_not_too_big, error_about_error, source_quench);
// quote_mismatch and malformed_quote need Count errors within Window;
// reset_storm needs the rate and the spread of quoted ports. Per-host
// state is capped (MaxHosts) and counts evictions.
//
// A spray is one attack: the reasons one error is enough for are judged
// per reporter (the error's source, as seen on the wire: the forger or
// the address it spoofs). A reporter's first such error is held back for
// errSettle; a second receiver within window makes the reporter a sprayer,
// and its errors — the held one first — are one attack whose target is the
// reporter, with context receivers (distinct receivers, estimated). Errors
// to one receiver stay that receiver's attack, as a lone forged error
// does (reported errSettle later, with its own timestamp). With several
// engines the reporter's engine judges these reasons (detector/shard
// routes such errors there too: RoutesBySource, ObserveSource), the
// receiver's engine the per-receiver counts (quote_mismatch,
// malformed_quote, reset_storm).
type ErrorAbuse struct {
	cfg       ErrorAbuseConfig
	trusted   map[netip.Addr]bool
	hosts     *table.Table[netip.Addr, errHost]
	reporters *table.Table[netip.Addr, errReporter]
	sprays    *table.Table[netip.Addr, errSpray]
	// held is a FIFO ring of errors held back, oldest at heldHead.
	held              []heldErr
	heldHead, heldLen int
	heldGen           uint32
	heldEarly         uint64 // released before errSettle: the ring was full
	heldDue           int64  // while heldLen > 0: when the oldest held error is due (its time + errSettle)
	width             int64  // reset window bucket width
	resetNs           int64
	windowNs          int64
	sweep             sweepClock
	q                 icmpmsg.Quote    // the quote judge read last
	fire              detector.Measure // every hit's measure (LevelFire; the tracker only reads it)
	// bucketed: reset_window is width*window.Buckets exactly, so a
	// packet's epoch (now / resetNs) is its bucket index / window.Buckets
	// (truncated division composes: (n/w)/b = n/(w*b)).
	bucketed bool
	// resetCount is the least count of hard errors in the reset window
	// whose rate (RatesOver) reaches reset_pps.
	resetCount uint64
}

// NewErrorAbuse returns the icmp_error_abuse rule.
func NewErrorAbuse(cfg ErrorAbuseConfig) *ErrorAbuse {
	return &ErrorAbuse{
		cfg:        cfg,
		trusted:    parseAddrs(cfg.TrustReporters),
		hosts:      table.New[netip.Addr, errHost](cfg.MaxHosts, nil),
		reporters:  table.New[netip.Addr, errReporter](cfg.MaxHosts, nil),
		sprays:     table.New[netip.Addr, errSpray](min(cfg.MaxHosts, errSprayMax), nil),
		held:       make([]heldErr, errHeldMax),
		width:      int64(cfg.ResetWindow) / window.Buckets,
		resetNs:    int64(cfg.ResetWindow),
		bucketed:   int64(cfg.ResetWindow)%window.Buckets == 0,
		resetCount: leastCount(cfg.ResetPPS, 1, cfg.ResetWindow.Seconds()),
		windowNs:   int64(cfg.Window),
		fire:       detector.Measure{Level: detector.LevelFire},
	}
}

// RoutesBySource implements shard.SourceRouter: the errors that may carry
// a reason one error is enough for (a packet-too-big or
// fragmentation-needed, a source quench, an error quoting an ICMP error
// without extension headers) also go to their reporter's engine, where
// sprays are counted. An error left out is judged whole on its receiver's
// engine. It reads only the packet.
func (r *ErrorAbuse) RoutesBySource(p *detector.Packet) bool {
	if !p.HasICMP || p.Fragment || !icmpmsg.IsError(p.IPv6, p.ICMPType) {
		return false
	}
	m := p.ICMPData
	if p.IPv6 {
		return p.ICMPType == icmpmsg.V6PacketTooBig ||
			len(m) > 8+40 && m[8+6] == detector.ProtoICMPv6 && icmpmsg.IsError(true, m[8+40])
	}
	if p.ICMPType == icmpmsg.V4SourceQuench || p.ICMPType == icmpmsg.V4DestUnreach && p.ICMPCode == icmpmsg.V4FragNeededCod {
		return true
	}
	if len(m) < 8+20 || m[8]>>4 != 4 || m[8+9] != detector.ProtoICMPv4 {
		return false
	}
	hl := 8 + int(m[8]&0x0f)*4
	return len(m) > hl && icmpmsg.IsError(false, m[hl])
}

// Info implements detector.Rule.
func (r *ErrorAbuse) Info() detector.RuleInfo { return errorAbuseInfo }

// hardError tells whether p is a hard error (RFC 5927 §4: protocol or port
// unreachable; ICMPv6 port unreachable) that stacks may act on by
// aborting a connection.
func hardError(p *detector.Packet) bool {
	if p.IPv6 {
		return p.ICMPType == icmpmsg.V6DestUnreach && p.ICMPCode == 4
	}
	return p.ICMPType == icmpmsg.V4DestUnreach && (p.ICMPCode == 2 || p.ICMPCode == 3)
}

// Interest implements detector.Interested: the error messages.
func (r *ErrorAbuse) Interest() detector.Interest {
	return detector.Interest{
		ICMPv4: detector.Types(icmpmsg.V4DestUnreach, icmpmsg.V4SourceQuench, icmpmsg.V4TimeExceeded, icmpmsg.V4ParamProblem),
		ICMPv6: detector.Types(icmpmsg.V6DestUnreach, icmpmsg.V6PacketTooBig, icmpmsg.V6TimeExceeded, icmpmsg.V6ParamProblem),
	}
}

// judge returns the reasons p is evidence for (a bit per reason), the MTU
// it claims (0 if none) and how far its quote was read; the quote is left
// in r.q (read in place by the callers, not copied from call to call).
func (r *ErrorAbuse) judge(p *detector.Packet) (reasons uint32, mtu uint32, st icmpmsg.QuoteStatus) {
	msg := p.ICMPData
	q := &r.q
	st = icmpmsg.ParseQuoteInto(q, p.IPv6, msg)
	switch st {
	case icmpmsg.QuoteMalformed:
		reasons |= 1 << reasonMalformedQuote
	case icmpmsg.QuoteMissing:
		if p.CapLen >= p.WireLen && len(msg) < 8+20 { // not cut by the capture: the sender sent no quote
			reasons |= 1 << reasonMalformedQuote
		}
	case icmpmsg.QuoteOK:
		if q.Src != p.Dst {
			reasons |= 1 << reasonQuoteMismatch
		}
		if q.HasICMP && icmpmsg.IsError(q.IPv6, q.ICMPType) {
			reasons |= 1 << reasonErrorAboutError
		}
	}
	ptb := p.IPv6 && p.ICMPType == icmpmsg.V6PacketTooBig ||
		!p.IPv6 && p.ICMPType == icmpmsg.V4DestUnreach && p.ICMPCode == icmpmsg.V4FragNeededCod
	if ptb {
		m, ok := icmpmsg.MTU(p.IPv6, msg)
		if ok && (p.IPv6 || m != 0) {
			mtu = m
			if p.IPv6 && m < 1280 || !p.IPv6 && m < uint32(r.cfg.MinMTU) {
				reasons |= 1 << reasonMTUBelowMin
			}
			if st == icmpmsg.QuoteOK {
				size := q.Length
				if !p.IPv6 {
					size += q.HeaderLen // RFC 1191's BSD routers quoted the length less the header
				}
				if size <= int(m) {
					reasons |= 1 << reasonPTBNotTooBig
				}
			}
		}
	}
	if !p.IPv6 && p.ICMPType == icmpmsg.V4SourceQuench {
		reasons |= 1 << reasonSourceQuench
	}
	return reasons, mtu, st
}

// immediate are the reasons one error is enough for.
const immediate = 1<<reasonMTUBelowMin | 1<<reasonPTBNotTooBig | 1<<reasonErrorAboutError | 1<<reasonSourceQuench

// Observe implements detector.Rule: on the receiver's engine. A packet
// whose reporter another engine owns (p.SourceRemote) leaves the reasons
// one error is enough for to that engine's ObserveSource.
func (r *ErrorAbuse) Observe(p *detector.Packet, rep detector.Reporter) {
	r.observe(p, rep, true, !p.SourceRemote)
}

// ObserveSource implements detector.SourceObserver: with several engines,
// the errors RoutesBySource sends to their reporter's engine.
func (r *ErrorAbuse) ObserveSource(p *detector.Packet, rep detector.Reporter) {
	r.observe(p, rep, false, true)
}

// observe judges error p: recv, the per-receiver counts (quote_mismatch,
// malformed_quote, reset_storm); reporter, the reasons one error is
// enough for, per reporter (see ErrorAbuse).
func (r *ErrorAbuse) observe(p *detector.Packet, rep detector.Reporter, recv, reporter bool) {
	if !p.HasICMP || p.Fragment || !icmpmsg.IsError(p.IPv6, p.ICMPType) {
		return
	}
	if len(r.trusted) > 0 && r.trusted[p.Src] {
		return
	}
	reasons, mtu, st := r.judge(p)
	q := &r.q
	now := p.TimeNs
	// The receiver's counts: its reasons, or a hard error quoting TCP
	// from the receiver itself (no quote_mismatch), which may be a reset
	// storm's. A forged PTB, with its immediate reasons alone, costs no
	// call.
	if recv {
		hard := st == icmpmsg.QuoteOK && reasons&(1<<reasonQuoteMismatch) == 0 && q.Proto == 6 && q.HasPorts && hardError(p)
		if hard || reasons&^immediate != 0 {
			r.observeReceiver(p, rep, reasons&^immediate, q, st, hard)
		}
	}
	if reporter && reasons&immediate != 0 {
		r.observeReporter(p, rep, reasons&immediate, mtu, q, st)
	}
	if r.heldLen > 0 && now >= r.heldDue {
		r.release(now, rep)
	}
}

// observeReceiver counts p's per-receiver reasons (immediate ones left
// out), and when hard the hard error's quoted port (reset_storm), and
// reports the receiver when they reach their level.
func (r *ErrorAbuse) observeReceiver(p *detector.Packet, rep detector.Reporter, reasons uint32, q *icmpmsg.Quote, st icmpmsg.QuoteStatus, hard bool) {
	now := p.TimeNs
	storm := false
	var h *errHost
	if hard {
		var ok bool
		if h, ok = r.hosts.Again(p.Dst, now); !ok { // a storm's receiver, without a call
			h, _ = r.hosts.Get(p.Dst, now)
		}
		h.last = now
		storm = r.resetStorm(h, now, q.SrcPort, p.WireLen)
		if storm {
			reasons |= 1 << reasonResetStorm
		}
	}
	if reasons == 0 {
		return
	}
	if h == nil {
		h, _ = r.hosts.Get(p.Dst, now)
		h.last = now
	}
	h.count(reasons)
	if st == icmpmsg.QuoteOK {
		h.quoted.set(q)
	}
	fire := storm
	if counted := reasons & (1<<reasonQuoteMismatch | 1<<reasonMalformedQuote); counted != 0 {
		if now-h.countStart >= r.windowNs || now < h.countStart {
			h.countStart, h.counted = now, 0
		}
		h.counted++
		fire = fire || h.counted >= uint32(r.cfg.Count)
	}
	if fire {
		rep.Hit(p.Dst, p, &r.fire)
	}
}

// count counts reasons in h.
func (h *errHost) count(reasons uint32) {
	for b := reasons; b != 0; b &= b - 1 {
		h.reasons[bits.TrailingZeros32(b)]++
	}
}

// note records reasons, mtu and the quote (if filled) in receiver dst's
// state.
func (r *ErrorAbuse) note(dst netip.Addr, reasons uint32, mtu uint32, q quoteSample, now int64) *errHost {
	h, _ := r.hosts.Get(dst, now)
	h.last = now
	h.count(reasons)
	if mtu != 0 {
		mtuSlots(h.mtus[:]).noteMTU(mtu)
	}
	if q.filled {
		h.quoted = q
	}
	return h
}

// sampleOf is the sample of a parsed quote (empty unless st is QuoteOK).
func sampleOf(q *icmpmsg.Quote, st icmpmsg.QuoteStatus) quoteSample {
	var s quoteSample
	if st == icmpmsg.QuoteOK {
		s.set(q)
	}
	return s
}

// set makes s the sample of quote q (read OK), field by field.
func (s *quoteSample) set(q *icmpmsg.Quote) {
	s.src, s.dst, s.proto, s.sport, s.dport = q.Src, q.Dst, q.Proto, q.SrcPort, q.DstPort
	s.length, s.hasPorts, s.filled = q.Length, q.HasPorts, true
}

// observeReporter handles an error with a reason one error is enough
// for: part of its reporter's spray, the receiver's own attack, or held
// back until it is known which (see ErrorAbuse).
func (r *ErrorAbuse) observeReporter(p *detector.Packet, rep detector.Reporter, reasons uint32, mtu uint32, q *icmpmsg.Quote, st icmpmsg.QuoteStatus) {
	now := p.TimeNs
	fire := &r.fire
	rp, found := r.reporters.Again(p.Src, now) // a sprayer's next error, without a call
	created := false
	if !found {
		rp, created = r.reporters.Get(p.Src, now)
	}
	if created || now-rp.last >= r.windowNs || now < rp.last {
		*rp = errReporter{first: p.Dst}
	}
	rp.last = now
	if !rp.spray && p.Dst != rp.first {
		// A second receiver: the reporter sprays. Its held error is the
		// attack's first.
		rp.spray = true
		sp, _ := r.sprays.Get(p.Src, now)
		*sp = errSpray{}
		sp.receivers.Add(rp.first)
		sp.receivers.Add(p.Dst)
		if h := r.heldOf(rp); h != nil {
			h.live = false
			sp.note(h.reasons, h.mtu, &h.quoted, now)
			rep.Hit(p.Src, &h.pkt, fire)
		}
	}
	if rp.spray {
		sp, ok := r.sprays.Again(p.Src, now)
		if !ok {
			sp, _ = r.sprays.Get(p.Src, now)
		}
		sp.receivers.AddHash(p.DstHash())
		sp.count(reasons, mtu, now)
		if st == icmpmsg.QuoteOK {
			sp.quoted.set(q) // the sample straight from the quote, not through a copy
		}
		rep.Hit(p.Src, p, fire)
		return
	}
	sample := sampleOf(q, st)
	if h := r.heldOf(rp); h != nil {
		// A second error to the same receiver: its own attack, now.
		r.report(h, rep)
	} else if rp.heldGen == 0 {
		// The reporter's first: held back until it is known whether
		// more receivers follow.
		r.hold(p, rp, reasons, mtu, sample, rep)
		return
	}
	// Its first error was reported already: the receiver's attack goes on.
	r.note(p.Dst, reasons, mtu, sample, now)
	rep.Hit(p.Dst, p, fire)
}

// note adds an error's reasons, MTU and quote to a spray's evidence.
func (sp *errSpray) note(reasons, mtu uint32, q *quoteSample, now int64) {
	sp.count(reasons, mtu, now)
	if q.filled {
		sp.quoted = *q
	}
}

// count adds an error's reasons and MTU to a spray's evidence.
func (sp *errSpray) count(reasons, mtu uint32, now int64) {
	sp.last = now
	for b := reasons; b != 0; b &= b - 1 {
		sp.reasons[bits.TrailingZeros32(b)]++
	}
	if mtu != 0 {
		mtuSlots(sp.mtus[:]).noteMTU(mtu)
	}
}

// heldOf is rp's held error, or nil.
func (r *ErrorAbuse) heldOf(rp *errReporter) *heldErr {
	if rp.held == 0 {
		return nil
	}
	h := &r.held[rp.held-1]
	if !h.live || h.gen != rp.heldGen {
		return nil
	}
	return h
}

// hold keeps p back for errSettle; a full ring reports its oldest first.
func (r *ErrorAbuse) hold(p *detector.Packet, rp *errReporter, reasons, mtu uint32, q quoteSample, rep detector.Reporter) {
	if r.heldLen == len(r.held) {
		r.heldEarly++
		r.pop(rep)
	}
	i := (r.heldHead + r.heldLen) % len(r.held)
	if r.heldLen == 0 {
		r.heldDue = p.TimeNs + int64(errSettle)
	}
	r.heldLen++
	if r.heldGen++; r.heldGen == 0 { // 0 means "never held"
		r.heldGen = 1
	}
	h := &r.held[i]
	h.pkt = *p
	h.pkt.ICMPData = nil // the frame's bytes are not ours to keep
	h.reasons, h.mtu, h.quoted = reasons, mtu, q
	h.gen, h.live = r.heldGen, true
	rp.held, rp.heldGen = int32(i+1), r.heldGen
}

// report reports held error h as its receiver's attack.
func (r *ErrorAbuse) report(h *heldErr, rep detector.Reporter) {
	h.live = false
	r.note(h.pkt.Dst, h.reasons, h.mtu, h.quoted, h.pkt.TimeNs)
	rep.Hit(h.pkt.Dst, &h.pkt, &r.fire)
}

// pop reports the oldest held error (if still held) as its receiver's
// attack and takes it off the ring.
func (r *ErrorAbuse) pop(rep detector.Reporter) {
	h := &r.held[r.heldHead]
	r.heldHead = (r.heldHead + 1) % len(r.held)
	r.heldLen--
	if r.heldLen > 0 {
		r.heldDue = r.held[r.heldHead].pkt.TimeNs + int64(errSettle)
	}
	if h.live {
		r.report(h, rep)
	}
}

// release reports the held errors errSettle old at now.
func (r *ErrorAbuse) release(now int64, rep detector.Reporter) {
	for r.heldLen > 0 && now >= r.heldDue {
		r.pop(rep)
	}
}

// Flush implements detector.Flusher: every held error is reported now.
func (r *ErrorAbuse) Flush(rep detector.Reporter) {
	for r.heldLen > 0 {
		r.pop(rep)
	}
}

// resetStorm counts a hard error quoting TCP source port sport of h and
// tells whether h's hard errors are a reset storm.
func (r *ErrorAbuse) resetStorm(h *errHost, now int64, sport uint16, n int) bool {
	idx := now / r.width
	h.hard.AddBucket(idx, n)
	ep := idx / window.Buckets // now / resetNs, one division fewer (bucketed: see NewErrorAbuse)
	if !r.bucketed {
		ep = now / r.resetNs
	}
	if ep != h.epoch {
		if ep != h.epoch+1 {
			h.ports[(ep+1)&1] = portBitmap{}
		}
		h.ports[ep&1] = portBitmap{}
		h.epoch = ep
		h.union = 0
		for _, w := range h.ports[(ep+1)&1] {
			h.union += bits.OnesCount64(w)
		}
	}
	x := uint(sport) * 0x9e37 % errPortBits
	w, bit := x/64, uint64(1)<<(x%64)
	if (h.ports[0][w]|h.ports[1][w])&bit == 0 {
		h.union++
	}
	h.ports[h.epoch&1][w] |= bit
	// pps < reset_pps, on the window's count (the least count whose
	// rate reaches reset_pps: the same test, no division).
	if h.hard.Packets() < r.resetCount {
		return false
	}
	return h.union >= r.cfg.ResetPorts
}

// mtuSlots are the distinct MTUs an attack's errors claimed (0: empty).
type mtuSlots []uint32

func (s mtuSlots) noteMTU(m uint32) {
	for i, v := range s {
		if v == m {
			return
		}
		if v == 0 {
			s[i] = m
			return
		}
	}
}

// errHostIdle is how long a host's state outlives its last error, so an
// attack's end event still finds its reasons.
const errHostIdle = 2 * time.Minute

// Tick implements detector.Rule: hosts idle for errHostIdle (and longer
// than the count window) leave the table.
func (r *ErrorAbuse) Tick(now time.Time, rep detector.Reporter) {
	if r.heldLen > 0 {
		r.release(now.UnixNano(), rep)
	}
	if r.sweep.due(now, 10*time.Second) {
		before := now.Add(-max(errHostIdle, r.cfg.Window)).UnixNano()
		r.hosts.Sweep(func(_ netip.Addr, h *errHost, _ int64) bool { return h.last < before })
		r.sprays.Sweep(func(_ netip.Addr, s *errSpray, _ int64) bool { return s.last < before })
		quiet := now.Add(-r.cfg.Window).UnixNano()
		r.reporters.Sweep(func(_ netip.Addr, rp *errReporter, _ int64) bool { return rp.last < quiet && rp.held == 0 })
	}
}

// Describe implements detector.Describer: the reasons with their counts,
// the MTUs claimed, and a sample of the quoted packet.
func (r *ErrorAbuse) Describe(target netip.Addr, extra map[string]any) {
	if sp, ok := r.sprays.Lookup(target); ok {
		extra["receivers"] = sp.receivers.Estimate()
		extra["receivers_estimated"] = true
		describeErrors(extra, &sp.reasons, &sp.mtus, sp.quoted)
		return
	}
	h, ok := r.hosts.Lookup(target)
	if !ok {
		return
	}
	describeErrors(extra, &h.reasons, &h.mtus, h.quoted)
}

// describeErrors adds the reasons with their counts, the MTUs claimed and
// the quoted sample.
func describeErrors(extra map[string]any, rs *[numErrReasons]uint64, ms *[4]uint32, q quoteSample) {
	reasons := map[string]any{}
	for i, n := range rs {
		if n > 0 {
			reasons[errReasonNames[i]] = n
		}
	}
	extra["reasons"] = reasons
	var mtus []any
	for _, m := range ms {
		if m != 0 {
			mtus = append(mtus, m)
		}
	}
	if len(mtus) > 0 {
		sort.Slice(mtus, func(i, j int) bool { return mtus[i].(uint32) < mtus[j].(uint32) })
		extra["mtus"] = mtus
	}
	if q.filled {
		qm := map[string]any{"src": q.src.String(), "dst": q.dst.String(), "proto": detector.ProtoName(q.proto), "length": q.length}
		if q.hasPorts {
			qm["src_port"], qm["dest_port"] = q.sport, q.dport
		}
		extra["quoted"] = qm
	}
}

// Tables implements detector.TableReporter.
func (r *ErrorAbuse) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "icmp_error_abuse.hosts", Len: r.hosts.Len(), Cap: r.hosts.Cap(), Evicted: r.hosts.Evicted()},
		{Name: "icmp_error_abuse.reporters", Len: r.reporters.Len(), Cap: r.reporters.Cap(), Evicted: r.reporters.Evicted()},
		{Name: "icmp_error_abuse.sprays", Len: r.sprays.Len(), Cap: r.sprays.Cap(), Evicted: r.sprays.Evicted()},
		{Name: "icmp_error_abuse.held", Len: r.heldLen, Cap: len(r.held), Evicted: r.heldEarly},
	}
}
