package rules

import (
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
	"github.com/icmpids/icmpids/detector/window"
)

// smurfInfo identifies the smurf rule in alerts.
var smurfInfo = detector.RuleInfo{
	Name:        "smurf",
	SignatureID: 9000007,
	Rev:         1,
	Signature:   "ICMP Smurf / echo reflection attack",
	Category:    "Attempted Denial of Service",
	Severity:    2,
}

// smurfDefinition registers smurf.
func smurfDefinition() Definition {
	return define(smurfInfo,
		"smurf: echo requests to broadcast addresses or multicast groups from one (spoofed) source, and storms of unsolicited echo replies from many reflectors to one host. Both halves for one victim are one attack.",
		map[string]string{
			"window":              "Sliding window for both rates (10 buckets).",
			"request_pps":         "Start level for echo requests from one source to broadcast/multicast destinations: 10/s. A single broadcast ping, or a sweep that touches x.y.z.255 once, stays below it.",
			"reply_pps":           "Start level for unsolicited echo replies to one host, and the number of distinct reflectors they must come from: a host's own pings never count.",
			"home_networks":       "Your IPv4 networks (CIDR): their directed broadcast address (all host bits set) is a known broadcast. Example: [10.0.0.0/24, 192.168.1.0/24].",
			"broadcast_heuristic": "Outside home_networks, treat x.y.z.255 as a likely directed broadcast.",
			"max_hosts":           "Caps on the per-host table and on outstanding echo requests (to tell solicited replies from unsolicited ones); evictions are counted.",
			"request_timeout":     "How long an echo request solicits replies.",
		},
		DefaultSmurfConfig,
		func(c SmurfConfig) (detector.Rule, error) { return NewSmurf(c) })
}

// SmurfConfig configures smurf.
type SmurfConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Window is the sliding window both rates are measured over (10
	// buckets); distinct reflectors are counted over the current and the
	// previous window.
	Window time.Duration `mapstructure:"window"`
	// RequestPPS is the start level for echo requests from one source to
	// broadcast addresses and multicast groups, in packets/s.
	RequestPPS float64 `mapstructure:"request_pps"`
	// ReplyPPS is the start level for unsolicited echo replies to one host,
	// in packets/s; MinReflectors the distinct reflectors those replies
	// must come from (estimated) before the reply side counts at all.
	ReplyPPS      float64 `mapstructure:"reply_pps"`
	MinReflectors int     `mapstructure:"min_reflectors"`
	// StopRatio sets the stop levels as a fraction of the start levels.
	StopRatio float64 `mapstructure:"stop_ratio"`
	// HomeNetworks are the IPv4 networks (CIDR) whose directed broadcast
	// (all host bits set) is a known broadcast address. A prefix with host
	// bits set (10.0.0.1/24) stands for its network. IPv6 prefixes are
	// accepted and only exempt their addresses from the heuristic (IPv6 has
	// no broadcast; its groups are multicast addresses, always recognised).
	HomeNetworks []string `mapstructure:"home_networks"`
	// BroadcastHeuristic treats x.y.z.255 outside every home network as a
	// likely directed broadcast.
	BroadcastHeuristic bool `mapstructure:"broadcast_heuristic"`
	// MaxHosts caps the per-host table (spoofed sources and reply
	// receivers); MaxPending the table of outstanding echo requests.
	MaxHosts   int `mapstructure:"max_hosts"`
	MaxPending int `mapstructure:"max_pending"`
	// RequestTimeout is how long an echo request solicits replies.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
}

// DefaultSmurfConfig returns smurf's defaults: a 1 s window; 10 broadcast
// echo requests/s from one source; 200 unsolicited echo replies/s to one
// host from at least 10 reflectors; stop at half the rates; no home
// networks, the .255 heuristic on; 16,384 hosts and 65,536 outstanding
// requests tracked; a request solicits replies for 10 s.
func DefaultSmurfConfig() SmurfConfig {
	return SmurfConfig{
		Enabled:            true,
		Window:             time.Second,
		RequestPPS:         10,
		ReplyPPS:           200,
		MinReflectors:      10,
		StopRatio:          0.5,
		BroadcastHeuristic: true,
		MaxHosts:           16384,
		MaxPending:         65536,
		RequestTimeout:     10 * time.Second,
	}
}

// maxMinReflectors bounds min_reflectors to what the per-host estimator
// (reflectorBits bits) still counts to within about 10 %.
const maxMinReflectors = 1000

// Validate checks the settings; errors name the configuration key and the
// bad value.
func (c SmurfConfig) Validate() error {
	k := newCheck(smurfInfo.Name)
	k.duration("window", c.Window, 10*time.Millisecond, time.Minute)
	k.positive("request_pps", c.RequestPPS)
	k.positive("reply_pps", c.ReplyPPS)
	k.count("min_reflectors", c.MinReflectors, 1, maxMinReflectors)
	k.ratio("stop_ratio", c.StopRatio)
	k.prefixes("home_networks", c.HomeNetworks)
	k.count("max_hosts", c.MaxHosts, 1, 1<<24)
	k.count("max_pending", c.MaxPending, 1, 1<<24)
	k.duration("request_timeout", c.RequestTimeout, 10*time.Millisecond, 10*time.Minute)
	return k.err()
}

// reflectorBits is the size of the per-host distinct-reflector bitmap
// (linear counting): 512 bits, 64 bytes per window.
const reflectorBits = 512

type reflectorSet [reflectorBits / 64]uint64

func (s *reflectorSet) add(a netip.Addr) {
	x := sketch.HashAddr(a) % reflectorBits
	s[x/64] |= 1 << (x % 64)
}

func (s *reflectorSet) or(o *reflectorSet) reflectorSet {
	var r reflectorSet
	for i := range s {
		r[i] = s[i] | o[i]
	}
	return r
}

func (s *reflectorSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// reflectorsFromBits is the linear-counting estimate of distinct reflectors
// behind b set bits of the bitmap.
func reflectorsFromBits(b int) uint64 {
	const m = float64(reflectorBits)
	if b >= reflectorBits {
		b = reflectorBits - 1 // saturated: report the largest estimate
	}
	return uint64(math.Round(-m * math.Log(1-float64(b)/m)))
}

// bitsForReflectors is the least number of set bits whose estimate reaches n
// distinct reflectors.
func bitsForReflectors(n int) int {
	const m = float64(reflectorBits)
	return int(math.Ceil(m*(1-math.Exp(-float64(n)/m)) - 1e-9))
}

// maxBroadcasts is how many distinct broadcast addresses a host records.
const maxBroadcasts = 4

// Sides of a smurf attack seen for a victim.
const (
	sideRequest uint8 = 1 << iota // broadcast echo requests with the victim's address as source
	sideReply                     // a reflected echo-reply storm toward the victim
)

// smurfHost is smurf's state for one host: as the source of broadcast echo
// requests (the spoofed victim) and as the receiver of unsolicited replies.
type smurfHost struct {
	req, rep   window.Counter
	epoch      int64 // window index of cur
	cur, prev  reflectorSet
	broadcasts [maxBroadcasts]netip.Addr
	nBcast     uint8
	sides      uint8
	reqFired   bool // the request side reached its start level and has not fallen below its stop level since
	peakBits   uint16
	// peakReq and peakRep are the highest request and reply rates reported.
	peakReq, peakRep float64
	last             int64 // packet time of the last packet counted (ns)
}

func (h *smurfHost) noteBroadcast(a netip.Addr) {
	for i := 0; i < int(h.nBcast); i++ {
		if h.broadcasts[i] == a {
			return
		}
	}
	if h.nBcast < maxBroadcasts {
		h.broadcasts[h.nBcast] = a
		h.nBcast++
	}
}

// addReflector counts a in the bitmap of window epoch e.
func (h *smurfHost) addReflector(a netip.Addr, e int64) {
	switch d := e - h.epoch; {
	case d == 0:
	case d == 1:
		h.prev, h.cur, h.epoch = h.cur, reflectorSet{}, e
	default:
		h.prev, h.cur, h.epoch = reflectorSet{}, reflectorSet{}, e
	}
	h.cur.add(a)
}

// reflectorBitsAt is the number of bitmap bits set over the window of
// epoch e and the one before, without changing the state.
func (h *smurfHost) reflectorBitsAt(e int64) int {
	switch e - h.epoch {
	case 0:
		u := h.cur.or(&h.prev)
		return u.count()
	case 1:
		return h.cur.count()
	}
	return 0
}

// Smurf is the smurf rule. It watches both halves of a Smurf (ICMP echo
// reflection) attack and reports both under the victim's address, so the
// engine makes them one attack.
//
// Request side (the amplifier's network): echo requests (ICMP 8, ICMPv6
// 128) to a broadcast address or group are counted per source address,
// which is the spoofed victim, over a sliding Window. Broadcast means: an
// Ethernet broadcast frame; 255.255.255.255; any IPv4 or IPv6 multicast
// address (224.0.0.1, ff02::1, ff05::1, ...); the directed broadcast of a
// home network; and, with BroadcastHeuristic, an IPv4 x.y.z.255 outside
// every home network (the directed broadcast of the /24 holding it, and of
// any shorter prefix ending there; .127, .63, ... of longer prefixes are
// not guessed — configure home_networks for those). The source reaching
// RequestPPS starts an attack with target = that source. A handful of
// broadcast pings (a sweep that includes x.y.z.255, ping -b) stays far
// below it. When the source is itself a group address, as THC-IPv6's
// rsmurf6 forges it (source and destination ff02::1), the target is that
// group: it is where every node's reply goes, so every node on the link is
// the victim.
//
// Reply side (the victim's network): every echo request seen registers
// (source, echo id) as outstanding for RequestTimeout. An echo reply to a
// host that matches no outstanding (host, id) is unsolicited; so is one
// answering that host's own broadcast requests while those are an attack
// (at RequestPPS, or still above the request stop level after reaching
// it): the spoofed requests and their answers on one link. Unsolicited
// replies are counted per receiving host over the Window, and their
// sources (the reflectors) go into a 512-bit linear-counting bitmap per
// host covering the current and the previous window (an estimate, within
// about 10 % up to 1,000 reflectors; it may be off by one or two at
// MinReflectors). The host reaching ReplyPPS with at least
// MinReflectors estimated reflectors starts an attack with target = that
// host. Solicited replies never count, so a monitoring host pinging 500
// hosts raises nothing; the sensor must see both directions of the hosts
// it protects.
//
// Each side lasts while its rate stays at or above StopRatio of its start
// level (and, for replies, the reflector minimum holds). Events carry the
// sides seen, the estimated reflectors and the broadcast addresses used;
// the engine's sources are the reflectors (reply side) and the spoofed
// sender (request side).
//
// Against icmp_flood: Smurf implements Claimer. Pass it to NewFlood and
// icmp_flood leaves out the packets smurf reports: broadcast/multicast
// echo requests from a source at or above the request stop level, and
// echo replies to a host whose reply side is at or above its stop level.
// So a reflection storm is one smurf attack, not also an icmp_flood, while
// a spoofed-source flood of a group or of a .255 host (no single source
// reaching smurf's level) is still an icmp_flood.
//
// State: a host table (MaxHosts, keyed by spoofed source or receiving
// host, entries idle for hostIdle dropped) and an outstanding-request
// table (MaxPending, a 4-way set-associative array: see pendingSet); both
// evict when full and count evictions.
type Smurf struct {
	cfg       SmurfConfig
	width     int64 // window bucket width (ns)
	windowNs  int64
	timeout   int64 // request timeout (ns)
	minBits   int   // reflector bits that make MinReflectors
	stopReq   float64
	stopRep   float64
	bcast     map[netip.Addr]struct{} // directed broadcasts of the home networks
	home      []netip.Prefix
	hosts     *table.Table[netip.Addr, smurfHost]
	pending   *pendingSet
	hostSweep sweepClock
	reqSweep  sweepClock
	// memo is what Classify worked out for the packet memo.pkt, which
	// Observe sees next (the engine calls Classify right before a
	// packet's Observe calls): each echo packet is classified once.
	memo struct {
		pkt        *detector.Packet // nil: nothing memoized
		bcast      bool             // request: isBroadcast
		unsolic    bool             // reply: unsolicited
		tag        uint32           // request: its outstanding-request tag and bucket
		first      int
		prefetched uint64 // a read of that bucket, to start its cache miss early
	}
}

// hostIdle is how long a host entry outlives its last counted packet, so
// that an attack's end event (after the engine's hold time) still finds
// its reflectors and broadcast addresses.
const hostIdle = time.Minute

// NewSmurf returns the smurf rule, or an error naming the bad key.
func NewSmurf(cfg SmurfConfig) (*Smurf, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Smurf{
		cfg:      cfg,
		width:    int64(cfg.Window) / window.Buckets,
		windowNs: int64(cfg.Window),
		timeout:  int64(cfg.RequestTimeout),
		minBits:  bitsForReflectors(cfg.MinReflectors),
		stopReq:  cfg.RequestPPS * cfg.StopRatio,
		stopRep:  cfg.ReplyPPS * cfg.StopRatio,
		bcast:    make(map[netip.Addr]struct{}),
		hosts:    table.New[netip.Addr, smurfHost](cfg.MaxHosts, nil),
		pending:  newPendingSet(cfg.MaxPending, int64(cfg.RequestTimeout)),
	}
	s.home = parsePrefixes(cfg.HomeNetworks) // validated above
	for _, pfx := range s.home {
		if b, ok := directedBroadcast(pfx); ok {
			s.bcast[b] = struct{}{}
		}
	}
	return s, nil
}

// directedBroadcast is the all-ones host address of an IPv4 prefix of
// length 30 or less (/31 and /32 have none, RFC 3021).
func directedBroadcast(p netip.Prefix) (netip.Addr, bool) {
	if !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, false
	}
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// Info implements detector.Rule.
func (s *Smurf) Info() detector.RuleInfo { return smurfInfo }

// Warm implements detector.Warmer: the outstanding-request ways (the
// broadcast times are read only where a way says one was stored).
func (s *Smurf) Warm() { table.Prefault(s.pending.ways) }

// isBroadcast tells whether p (an echo request) goes to a broadcast address
// or a multicast group, by the rules in Smurf's doc comment.
func (s *Smurf) isBroadcast(p *detector.Packet) bool {
	d := p.Dst
	if p.L2Broadcast || d.IsMulticast() {
		return true
	}
	if !d.Is4() {
		return false
	}
	b := d.As4()
	if b == [4]byte{255, 255, 255, 255} {
		return true
	}
	if len(s.bcast) > 0 {
		if _, ok := s.bcast[d]; ok {
			return true
		}
	}
	if !s.cfg.BroadcastHeuristic || b[3] != 255 || b[0] == 0 || b[0] >= 224 {
		return false
	}
	for _, h := range s.home {
		if h.Contains(d) {
			return false // a home network's broadcast is known exactly
		}
	}
	return true
}

// Interest implements detector.Interested: echo requests and replies.
func (s *Smurf) Interest() detector.Interest {
	return detector.Interest{ICMPv4: detector.Types(0, 8), ICMPv6: detector.Types(128, 129)}
}

func (s *Smurf) reqLevel(pps float64) detector.Level {
	return rateLevel(pps, s.cfg.RequestPPS, s.cfg.StopRatio)
}

// repLevel is the reply side's level: quiet below the reflector count.
func (s *Smurf) repLevel(pps float64, reflBits int) detector.Level {
	if reflBits < s.minBits {
		return detector.LevelQuiet
	}
	return rateLevel(pps, s.cfg.ReplyPPS, s.cfg.StopRatio)
}

// rateAt is c's packet rate at packet time now, leaving c unchanged.
func (s *Smurf) rateAt(c window.Counter, now int64) float64 {
	c.Advance(now, s.width)
	pps, _ := c.Rates(s.cfg.Window)
	return pps
}

// memoized tells whether Classify has just classified p (see Smurf.memo),
// and forgets it: the memo serves one Observe.
func (s *Smurf) memoized(p *detector.Packet) bool {
	ok := s.memo.pkt == p
	s.memo.pkt = nil
	return ok
}

// Observe implements detector.Rule.
func (s *Smurf) Observe(p *detector.Packet, rep detector.Reporter) {
	switch {
	case p.IsEchoRequest():
		s.observeRequest(p, rep)
	case p.IsEchoReply():
		s.observeReply(p, rep)
	}
}

func (s *Smurf) observeRequest(p *detector.Packet, rep detector.Reporter) {
	now := p.TimeNs
	var bcast bool
	if s.memoized(p) {
		bcast = s.memo.bcast
		s.pending.touchAt(s.memo.tag, s.memo.first, now, bcast)
	} else {
		bcast = s.isBroadcast(p)
		s.pending.touch(p.Src, p.ICMPID, now, bcast)
	}
	if !bcast || p.Class.Sweeping {
		return // a scanner's probe of x.y.z.255 is no reflection in its name
	}
	h, _ := s.hosts.Get(p.Src, now)
	h.last = now
	h.req.Add(now, s.width, p.WireLen)
	h.noteBroadcast(p.Dst)
	pps, bps := h.req.Rates(s.cfg.Window)
	lvl := s.reqLevel(pps)
	switch lvl {
	case detector.LevelQuiet:
		h.reqFired = false
		return
	case detector.LevelFire:
		h.reqFired = true
	}
	h.sides |= sideRequest
	h.peakReq = max(h.peakReq, pps)
	rep.Hit(p.Src, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: s.cfg.Window, Threshold: s.cfg.RequestPPS})
}

// Shadow implements detector.Shadower: an echo request seen by this engine
// only because it is the requesting host's (detector/shard) registers as
// outstanding, so the host's replies are known to be solicited here.
func (s *Smurf) Shadow(p *detector.Packet) {
	if !p.IsEchoRequest() {
		return
	}
	s.pending.touch(p.Src, p.ICMPID, p.TimeNs, s.isBroadcast(p))
}

// Group tells whether echo request p goes to a broadcast address or a
// multicast group by smurf's definition (see Smurf); it reads only the
// configuration, so any goroutine may call it.
func (s *Smurf) Group(p *detector.Packet) bool { return s.isBroadcast(p) }

// unsolicited tells whether reply p answers no outstanding request of its
// receiver, or answers that receiver's broadcast requests while they are
// an attack (see Smurf).
func (s *Smurf) unsolicited(p *detector.Packet, now int64) bool {
	live, lastBcast, _ := s.pending.lookup(p.Dst, p.ICMPID, now)
	if !live {
		return true
	}
	if lastBcast == 0 || now-lastBcast > s.timeout {
		return false
	}
	h, ok := s.hosts.Lookup(p.Dst)
	if !ok {
		return false
	}
	pps := s.rateAt(h.req, now)
	return pps >= s.cfg.RequestPPS || h.reqFired && pps >= s.stopReq
}

func (s *Smurf) observeReply(p *detector.Packet, rep detector.Reporter) {
	now := p.TimeNs
	if s.memoized(p) {
		if !s.memo.unsolic {
			return
		}
	} else if !s.unsolicited(p, now) {
		return
	}
	h, _ := s.hosts.Get(p.Dst, now)
	h.last = now
	h.rep.Add(now, s.width, p.WireLen)
	e := now / s.windowNs
	h.addReflector(p.Src, e)
	pps, bps := h.rep.Rates(s.cfg.Window)
	if pps < s.stopRep {
		return
	}
	rb := h.reflectorBitsAt(e)
	lvl := s.repLevel(pps, rb)
	if lvl == detector.LevelQuiet {
		return
	}
	h.sides |= sideReply
	h.peakBits = max(h.peakBits, uint16(rb))
	h.peakRep = max(h.peakRep, pps)
	rep.Hit(p.Dst, p, &detector.Measure{Level: lvl, PPS: pps, BPS: bps, Window: s.cfg.Window, Threshold: s.cfg.ReplyPPS})
}

// Classify implements detector.Classifier. An echo request to a broadcast
// address or group from a source at smurf's request rate, and an
// unsolicited echo reply of a storm at smurf's reply rate, are smurf's
// (p.Class.Owner): icmp_flood leaves them out. An echo reply its receiver
// asked for (an outstanding request with the same echo id) is marked
// Solicited: a host that pings fast gets its answers fast, and that is
// not a flood of it.
func (s *Smurf) Classify(p *detector.Packet) {
	now := p.TimeNs
	switch {
	case p.IsEchoRequest():
		// Observe registers the request as outstanding: locate its
		// bucket now and read it, so that its cache miss overlaps the
		// other rules' work on the packet instead of stalling Observe.
		bcast := s.isBroadcast(p)
		s.memo.pkt, s.memo.bcast = p, bcast
		s.memo.tag, s.memo.first = s.pending.locateHash(p.Src, p.SrcHash(), p.ICMPID)
		s.memo.prefetched = s.pending.ways[s.memo.first]
		if !bcast {
			return
		}
		if h, ok := s.hosts.Lookup(p.Src); ok && s.rateAt(h.req, now) >= s.stopReq {
			p.Class.Owner = smurfInfo.Name
		}
	case p.IsEchoReply():
		unsolic := s.unsolicited(p, now)
		s.memo.pkt, s.memo.unsolic = p, unsolic
		if !unsolic {
			p.Class.Solicited = true
			return
		}
		h, ok := s.hosts.Lookup(p.Dst)
		if !ok || h.sides&sideReply == 0 {
			return
		}
		pps := s.rateAt(h.rep, now)
		if s.repLevel(pps, h.reflectorBitsAt(now/s.windowNs)) >= detector.LevelSustain {
			p.Class.Owner = smurfInfo.Name
		}
	}
}

// Tick implements detector.Rule: it drops outstanding requests past their
// time-out (every RequestTimeout) and hosts idle for hostIdle (every 10 s).
func (s *Smurf) Tick(now time.Time, _ detector.Reporter) {
	if s.reqSweep.due(now, s.cfg.RequestTimeout) {
		s.pending.sweep(now.UnixNano())
	}
	if s.hostSweep.due(now, 10*time.Second) {
		before := now.Add(-hostIdle).UnixNano()
		s.hosts.Sweep(func(_ netip.Addr, v *smurfHost, _ int64) bool { return v.last < before })
	}
}

// Describe implements detector.Describer: the sides seen ("request",
// "reply" or "request+reply"), the peak estimated number of distinct
// reflectors in one window (reply side), the broadcast addresses and
// groups the victim's address was used toward (up to 4), and each side's
// peak rate.
func (s *Smurf) Describe(target netip.Addr, extra map[string]any) {
	h, ok := s.hosts.Lookup(target)
	if !ok {
		return
	}
	switch h.sides {
	case sideRequest:
		extra["sides"] = "request"
	case sideReply:
		extra["sides"] = "reply"
	case sideRequest | sideReply:
		extra["sides"] = "request+reply"
	}
	if h.sides&sideReply != 0 {
		extra["reflectors"] = reflectorsFromBits(int(h.peakBits))
	}
	if h.nBcast > 0 {
		bs := make([]string, 0, h.nBcast)
		for _, a := range h.broadcasts[:h.nBcast] {
			bs = append(bs, a.String())
		}
		extra["broadcast_addresses"] = bs
	}
	if h.sides&sideRequest != 0 {
		extra["request_peak_pps"] = h.peakReq
	}
	if h.sides&sideReply != 0 {
		extra["reply_peak_pps"] = h.peakRep
	}
}

// Tables implements detector.TableReporter.
func (s *Smurf) Tables() []detector.TableStat {
	return []detector.TableStat{
		{Name: "smurf.hosts", Len: s.hosts.Len(), Cap: s.hosts.Cap(), Evicted: s.hosts.Evicted()},
		{Name: "smurf.pending", Len: s.pending.Len(), Cap: s.pending.Cap(), Evicted: s.pending.Evicted()},
	}
}
