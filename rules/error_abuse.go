package rules

import (
	"math/bits"
	"net/netip"
	"sort"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
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
	// quoted source ports per reset_window-long epoch.
	hard  window.Counter
	ports [2]portBitmap
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

// ErrorAbuse is the icmp_error_abuse rule. For every ICMP error (IPv4
// types 3, 4, 11, 12; ICMPv6 1–4) it reads the claimed MTU and the quoted
// packet's header from the message (package icmpmsg; no copy) and judges
// it by the reasons of the contract. One attack per receiving host: a
// single error starts it for the reasons no genuine error can have
// (mtu_below_minimum, ptb_not_too_big, error_about_error, source_quench);
// quote_mismatch and malformed_quote need Count errors within Window;
// reset_storm needs the rate and the spread of quoted ports. Per-host
// state is capped (MaxHosts) and counts evictions.
type ErrorAbuse struct {
	cfg      ErrorAbuseConfig
	trusted  map[netip.Addr]bool
	hosts    *table.Table[netip.Addr, errHost]
	width    int64 // reset window bucket width
	resetNs  int64
	windowNs int64
	sweep    sweepClock
}

// NewErrorAbuse returns the icmp_error_abuse rule.
func NewErrorAbuse(cfg ErrorAbuseConfig) *ErrorAbuse {
	return &ErrorAbuse{
		cfg:      cfg,
		trusted:  parseAddrs(cfg.TrustReporters),
		hosts:    table.New[netip.Addr, errHost](cfg.MaxHosts, nil),
		width:    int64(cfg.ResetWindow) / window.Buckets,
		resetNs:  int64(cfg.ResetWindow),
		windowNs: int64(cfg.Window),
	}
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
// it claims (0 if none) and what it quotes.
func (r *ErrorAbuse) judge(p *detector.Packet) (reasons uint32, mtu uint32, q icmpmsg.Quote, st icmpmsg.QuoteStatus) {
	msg := p.ICMPData
	q, st = icmpmsg.ParseQuote(p.IPv6, msg)
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
	return reasons, mtu, q, st
}

// immediate are the reasons one error is enough for.
const immediate = 1<<reasonMTUBelowMin | 1<<reasonPTBNotTooBig | 1<<reasonErrorAboutError | 1<<reasonSourceQuench

// Observe implements detector.Rule.
func (r *ErrorAbuse) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.HasICMP || p.Fragment || !icmpmsg.IsError(p.IPv6, p.ICMPType) {
		return
	}
	if len(r.trusted) > 0 && r.trusted[p.Src] {
		return
	}
	reasons, mtu, q, st := r.judge(p)
	now := p.TimeNs
	storm := false
	if st == icmpmsg.QuoteOK && q.Proto == 6 && q.HasPorts && q.Src == p.Dst && hardError(p) {
		h, _ := r.hosts.Get(p.Dst, now)
		h.last = now
		storm = r.resetStorm(h, now, q.SrcPort, p.WireLen)
		if storm {
			reasons |= 1 << reasonResetStorm
		}
	}
	if reasons == 0 {
		return
	}
	h, _ := r.hosts.Get(p.Dst, now)
	h.last = now
	for b := reasons; b != 0; b &= b - 1 {
		h.reasons[bits.TrailingZeros32(b)]++
	}
	if mtu != 0 {
		h.noteMTU(mtu)
	}
	if st == icmpmsg.QuoteOK {
		h.quoted = quoteSample{src: q.Src, dst: q.Dst, proto: q.Proto, sport: q.SrcPort, dport: q.DstPort,
			length: q.Length, hasPorts: q.HasPorts, filled: true}
	}
	fire := reasons&immediate != 0 || storm
	if counted := reasons & (1<<reasonQuoteMismatch | 1<<reasonMalformedQuote); counted != 0 {
		if now-h.countStart >= r.windowNs || now < h.countStart {
			h.countStart, h.counted = now, 0
		}
		h.counted++
		fire = fire || h.counted >= uint32(r.cfg.Count)
	}
	if !fire {
		return
	}
	rep.Hit(p.Dst, p, &detector.Measure{Level: detector.LevelFire})
}

// resetStorm counts a hard error quoting TCP source port sport of h and
// tells whether h's hard errors are a reset storm.
func (r *ErrorAbuse) resetStorm(h *errHost, now int64, sport uint16, n int) bool {
	h.hard.Add(now, r.width, n)
	if ep := now / r.resetNs; ep != h.epoch {
		if ep != h.epoch+1 {
			h.ports[(ep+1)&1] = portBitmap{}
		}
		h.ports[ep&1] = portBitmap{}
		h.epoch = ep
	}
	x := uint(sport) * 0x9e37 % errPortBits
	h.ports[h.epoch&1][x/64] |= 1 << (x % 64)
	pps, _ := h.hard.Rates(r.cfg.ResetWindow)
	if pps < r.cfg.ResetPPS {
		return false
	}
	set := 0
	for i := range h.ports[0] {
		set += bits.OnesCount64(h.ports[0][i] | h.ports[1][i])
	}
	return set >= r.cfg.ResetPorts
}

func (h *errHost) noteMTU(m uint32) {
	for i, v := range h.mtus {
		if v == m {
			return
		}
		if v == 0 {
			h.mtus[i] = m
			return
		}
	}
}

// errHostIdle is how long a host's state outlives its last error, so an
// attack's end event still finds its reasons.
const errHostIdle = 2 * time.Minute

// Tick implements detector.Rule: hosts idle for errHostIdle (and longer
// than the count window) leave the table.
func (r *ErrorAbuse) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, 10*time.Second) {
		before := now.Add(-max(errHostIdle, r.cfg.Window)).UnixNano()
		r.hosts.Sweep(func(_ netip.Addr, h *errHost, _ int64) bool { return h.last < before })
	}
}

// Describe implements detector.Describer: the reasons with their counts,
// the MTUs claimed, and a sample of the quoted packet.
func (r *ErrorAbuse) Describe(target netip.Addr, extra map[string]any) {
	h, ok := r.hosts.Lookup(target)
	if !ok {
		return
	}
	reasons := map[string]any{}
	for i, n := range h.reasons {
		if n > 0 {
			reasons[errReasonNames[i]] = n
		}
	}
	extra["reasons"] = reasons
	var mtus []any
	for _, m := range h.mtus {
		if m != 0 {
			mtus = append(mtus, m)
		}
	}
	if len(mtus) > 0 {
		sort.Slice(mtus, func(i, j int) bool { return mtus[i].(uint32) < mtus[j].(uint32) })
		extra["mtus"] = mtus
	}
	if q := h.quoted; q.filled {
		qm := map[string]any{"src": q.src.String(), "dst": q.dst.String(), "proto": detector.ProtoName(q.proto), "length": q.length}
		if q.hasPorts {
			qm["src_port"], qm["dest_port"] = q.sport, q.dport
		}
		extra["quoted"] = qm
	}
}

// Tables implements detector.TableReporter.
func (r *ErrorAbuse) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "icmp_error_abuse.hosts", Len: r.hosts.Len(), Cap: r.hosts.Cap(), Evicted: r.hosts.Evicted()}}
}
