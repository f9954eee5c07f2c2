package detector

import (
	"cmp"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Phase is where an attack event stands in the attack's lifecycle.
type Phase uint8

// Attack phases, as the contract names them.
const (
	PhaseStart  Phase = iota // the attack was first seen
	PhaseUpdate              // the attack goes on (rate-limited)
	PhaseEnd                 // the attack has been quiet for the hold time
)

// String returns the contract's name of the phase.
func (p Phase) String() string {
	switch p {
	case PhaseStart:
		return "start"
	case PhaseUpdate:
		return "update"
	case PhaseEnd:
		return "end"
	}
	return "unknown"
}

// End reasons carried by end events.
const (
	EndQuiet    = "quiet"     // below the stop level for the hold time
	EndInputEnd = "input_end" // the replay's input ended
	EndShutdown = "shutdown"  // the sensor stopped (stamped then, not at the hold time's end)
	EndTimeJump = "time_jump" // packet time jumped backwards past the hold time
	EndEvicted  = "evicted"   // pushed out of a full attack table
	EndRuleOff  = "rule_off"  // its rule was disabled by a configuration reload
)

// RuleInfo is a rule's identity as alerts carry it.
type RuleInfo struct {
	// Name is the stable rule name of the contract (e.g. "icmp_flood").
	Name string
	// SignatureID, Signature, Category, Severity and Rev fill the EVE
	// alert object.
	SignatureID int
	Rev         int
	Signature   string
	Category    string
	Severity    int
	// OneShot rules emit a start event only (no update or end).
	OneShot bool
	// HoldTime is how long the rule's attacks must go without a hit
	// before they end; 0 means the engine's hold_time. Rules whose
	// evidence is sparse by nature (a covert channel at under a packet a
	// second, a slow sweep) set a longer one from their settings.
	HoldTime time.Duration
}

// SourceCount is one top source (attacker, reflector) and its packets.
type SourceCount struct {
	Addr    netip.Addr
	Packets uint64
}

// TypeCount is one ICMP type/code and its packets.
type TypeCount struct {
	Type, Code uint8
	Packets    uint64
}

// Event is one attack event. The engine hands each Event to the sink and
// keeps no reference to it.
type Event struct {
	// Time is the packet time of the event: the triggering packet for start
	// and update, the moment the hold time ran out for end.
	Time  time.Time
	Rule  RuleInfo
	Phase Phase
	// Target is the victim.
	Target netip.Addr
	// Src, Dst, Proto and the ICMP fields describe the triggering packet
	// (for end, the attack's last packet).
	Src, Dst netip.Addr
	Proto    uint8
	HasICMP  bool
	ICMPType uint8
	ICMPCode uint8
	// VLANs are the triggering packet's VLAN ids (outermost first), Tunnel
	// its outermost IP layer when it arrived encapsulated (Depth > 0).
	VLANs  []uint16
	Tunnel Tunnel
	// FirstSource is the attack's source as it started (its top source,
	// or the first packet's), the same on every phase of the attack.
	FirstSource netip.Addr
	// Source is the top attacker as seen on the wire.
	Source netip.Addr
	// Started and LastSeen bound the attack in packet time.
	Started, LastSeen time.Time
	// Packets and Bytes are the totals since the attack began.
	Packets, Bytes uint64
	// PPS and BPS are the current rates over Window; PeakPPS and PeakBPS
	// the highest seen during the attack.
	PPS, BPS, PeakPPS, PeakBPS float64
	Window                     time.Duration
	// Threshold is the start level the rate crossed, in packets/s (0 when
	// the rule is not rate-based).
	Threshold float64
	// Sources is the number of distinct sources; SourcesEstimated tells
	// whether it is a HyperLogLog estimate rather than an exact count.
	Sources          uint64
	SourcesEstimated bool
	TopSources       []SourceCount
	ICMPTypes        []TypeCount
	// EndReason says why an end event ended the attack (EndQuiet, ...).
	EndReason string
	// Extra holds rule-specific context (sorted by key on output).
	Extra map[string]any
}

// Duration is how long the attack has lasted, first to last packet.
func (e *Event) Duration() time.Duration { return e.LastSeen.Sub(e.Started) }

// ProtoName returns the EVE "proto" name for an IP protocol number.
func ProtoName(proto uint8) string {
	switch proto {
	case ProtoICMPv4:
		return "ICMP"
	case ProtoICMPv6:
		return "IPv6-ICMP"
	case 4:
		return "IPIP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 41:
		return "IPv6"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	case 51:
		return "AH"
	case 132:
		return "SCTP"
	}
	return strconv.Itoa(int(proto))
}

// EndOrder orders the end events an engine emits together — the attacks a
// tick finds quiet, or those Close or a time jump ends — as the engine
// does: by last packet, then rule (signature id, then name), then target.
// A dispatcher merging the ends of several engines (detector/shard) uses
// it to give them one engine's order.
func EndOrder(a, b *Event) int {
	return endOrder(a.LastSeen.UnixNano(), b.LastSeen.UnixNano(), &a.Rule, &b.Rule, a.Target, b.Target)
}

// endOrder is EndOrder on an attack's parts (last packet in Unix ns, rule,
// target), for the tracker, which orders attacks before it makes events.
func endOrder(lastA, lastB int64, ra, rb *RuleInfo, ta, tb netip.Addr) int {
	if c := cmp.Compare(lastA, lastB); c != 0 {
		return c
	}
	if c := cmp.Compare(ra.SignatureID, rb.SignatureID); c != 0 {
		return c
	}
	if c := strings.Compare(ra.Name, rb.Name); c != 0 {
		return c
	}
	return ta.Compare(tb)
}
