package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/icmpmsg"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/detector/table"
)

var ndSpoofInfo = detector.RuleInfo{
	Name:        "nd_spoof",
	SignatureID: 9000016,
	Rev:         1,
	Signature:   "ICMPv6 neighbor cache poisoning (NA spoofing)",
	Category:    "Attempted Administrator Privilege Gain",
	Severity:    1,
}

// ndSpoofDefinition registers nd_spoof.
func ndSpoofDefinition() Definition {
	return define(ndSpoofInfo,
		"nd_spoof: Neighbor Advertisements that rebind an address already known at another link-layer address (neighbor cache poisoning, THC-IPv6 parasite6, the IPv6 form of ARP spoofing). One rebinding is a host whose NIC changed; an address that flips back and forth, or one link-layer address taking over several known addresses, is an attack.",
		map[string]string{
			"flips":        "An address rebound this many times within window (A to B and back) is being fought over.",
			"takeovers":    "A link-layer address that took over this many addresses known at other link-layer addresses within window is poisoning caches (parasite6 answers every solicitation).",
			"window":       "The window both counts run over.",
			"max_bindings": "Cap on the bindings learned from NA, NS (source link-layer option) and RA; least recently seen are evicted and counted.",
		},
		DefaultNDSpoofConfig,
		func(c NDSpoofConfig) (detector.Rule, error) { return NewNDSpoof(c), nil })
}

// NDSpoofConfig configures nd_spoof.
type NDSpoofConfig struct {
	Enabled     bool          `mapstructure:"enabled"`
	Flips       int           `mapstructure:"flips"`
	Takeovers   int           `mapstructure:"takeovers"`
	Window      time.Duration `mapstructure:"window"`
	MaxBindings int           `mapstructure:"max_bindings"`
}

// DefaultNDSpoofConfig returns nd_spoof's defaults: 2 flips of one
// address, or 3 addresses taken over by one MAC, within 10 minutes.
func DefaultNDSpoofConfig() NDSpoofConfig {
	return NDSpoofConfig{Enabled: true, Flips: 2, Takeovers: 3, Window: 10 * time.Minute, MaxBindings: 65536}
}

// Validate checks the settings; errors name the configuration key.
func (c NDSpoofConfig) Validate() error {
	k := newCheck(ndSpoofInfo.Name)
	k.count("flips", c.Flips, 2, 1000)
	k.count("takeovers", c.Takeovers, 2, 1000)
	k.duration("window", c.Window, time.Second, 24*time.Hour)
	k.count("max_bindings", c.MaxBindings, 1, 1<<22)
	return k.err()
}

// ndBinding is an address's learned link-layer address and its history.
type ndBinding struct {
	mac, old [6]byte
	flips    uint32 // rebindings within the window that began at since
	since    int64
	last     int64
	poisoned bool // reported
}

// takeoverCell counts, per link-layer address (hashed into a fixed array
// of cells, with a fingerprint), the addresses it took over in a window.
type takeoverCell struct {
	mac   [6]byte
	n     uint32
	since int64
}

// NDSpoof is the nd_spoof rule: a capped table of IPv6 address →
// link-layer address bindings, learned from NAs (target link-layer
// option, else the frame's source), NSs (source link-layer option, never
// from the unspecified address of duplicate address detection) and RAs.
// A rebinding by an NA is reported when the address has flipped Flips
// times within Window, or when the new link-layer address has taken over
// Takeovers known addresses within Window. Target: the address taken
// over.
type NDSpoof struct {
	cfg      NDSpoofConfig
	windowNs int64
	bindings *table.Table[netip.Addr, ndBinding]
	cells    []takeoverCell
	sweep    sweepClock
}

// ndTakeoverCells is the size of the takeover array.
const ndTakeoverCells = 4096

// NewNDSpoof returns the nd_spoof rule.
func NewNDSpoof(cfg NDSpoofConfig) *NDSpoof {
	return &NDSpoof{cfg: cfg, windowNs: int64(cfg.Window), bindings: table.New[netip.Addr, ndBinding](cfg.MaxBindings, nil),
		cells: make([]takeoverCell, ndTakeoverCells)}
}

// Info implements detector.Rule.
func (r *NDSpoof) Info() detector.RuleInfo { return ndSpoofInfo }

// Warm implements detector.Warmer: the takeover cells.
func (r *NDSpoof) Warm() { table.Prefault(r.cells) }

// Observe implements detector.Rule.
func (r *NDSpoof) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.IPv6 || !p.HasICMP {
		return
	}
	var addr netip.Addr
	na := false
	switch {
	case isND(p, icmpmsg.V6NeighAdvert, 24):
		addr, _, _, _, _ = icmpmsg.NeighborTarget(p.ICMPData)
		na = true
	case isND(p, icmpmsg.V6NeighSolicit, 24), isND(p, icmpmsg.V6RouterAdvert, 16):
		if p.Src.IsUnspecified() {
			return // duplicate address detection: nobody's binding yet
		}
		addr = p.Src
	default:
		return
	}
	mac, fromOpt, ok := ndLinkAddr(p)
	if !ok || (!na && !fromOpt) || !addr.IsValid() || addr.IsMulticast() || addr.IsUnspecified() {
		return
	}
	now := p.TimeNs
	b, created := r.bindings.Get(addr, now)
	if created {
		*b = ndBinding{mac: mac, since: now, last: now}
		return
	}
	if b.mac == mac {
		b.last = now
		return
	}
	if !na {
		// Only an advertisement rebinds (RFC 4861 7.2.5 and its override
		// flag); a solicitation's option updates a stale entry alone.
		if now-b.last > r.windowNs {
			b.mac, b.last = mac, now
		}
		return
	}
	if now-b.since > r.windowNs {
		b.since, b.flips = now, 0
	}
	b.old, b.mac, b.last = b.mac, mac, now
	b.flips++
	taken := r.takeover(mac, now)
	if b.flips < uint32(r.cfg.Flips) && taken < uint32(r.cfg.Takeovers) {
		return
	}
	b.poisoned = true
	rep.Hit(addr, p, &detector.Measure{Level: detector.LevelFire})
}

// Interest implements detector.Interested: RAs, solicitations and
// advertisements.
func (r *NDSpoof) Interest() detector.Interest {
	return detector.Interest{ICMPv6: detector.Types(icmpmsg.V6RouterAdvert, icmpmsg.V6NeighSolicit, icmpmsg.V6NeighAdvert)}
}

// takeover counts one more address taken over by mac and returns how many
// it has taken over in the current window.
func (r *NDSpoof) takeover(mac [6]byte, now int64) uint32 {
	var k [16]byte
	copy(k[:], mac[:])
	c := &r.cells[sketch.HashAddr(netip.AddrFrom16(k))%ndTakeoverCells]
	if c.mac != mac || now-c.since > r.windowNs {
		*c = takeoverCell{mac: mac, since: now}
	}
	c.n++
	return c.n
}

// Tick implements detector.Rule: bindings not seen for a day go.
func (r *NDSpoof) Tick(now time.Time, _ detector.Reporter) {
	if r.sweep.due(now, time.Minute) {
		before := now.Add(-24 * time.Hour).UnixNano()
		r.bindings.Sweep(func(_ netip.Addr, b *ndBinding, _ int64) bool { return b.last < before })
	}
}

// Describe implements detector.Describer: the old and the new link-layer
// address of the address taken over, and its rebindings in the window.
func (r *NDSpoof) Describe(target netip.Addr, extra map[string]any) {
	b, ok := r.bindings.Lookup(target)
	if !ok || !b.poisoned {
		return
	}
	extra["old_mac"] = macString(b.old)
	extra["new_mac"] = macString(b.mac)
	extra["rebindings"] = uint64(b.flips)
}

// Tables implements detector.TableReporter.
func (r *NDSpoof) Tables() []detector.TableStat {
	return []detector.TableStat{{Name: "nd_spoof.bindings", Len: r.bindings.Len(), Cap: r.bindings.Cap(), Evicted: r.bindings.Evicted()}}
}
