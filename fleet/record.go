// Package fleet brings several sensors together: the observation record a
// sensor publishes every fleet interval (Record, the icmpids.obs topic's
// value), and the Correlator that sums the records of every sensor per key
// in event-time windows and judges the sums with the rules' own thresholds
// and the engine's own tracker (detector.FleetJudge, Engine.ObserveFleet).
package fleet

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/sketch"
	"github.com/icmpids/icmpids/output"
)

// RecordType is the "type" of every observation record.
const RecordType = "icmpids.observation"

// Record is one observation as it travels on the observations topic (JSON,
// keyed by Key so that every sensor's records of a prefix share a
// partition). Counts are per window bucket of SlotNs nanoseconds, the
// first being bucket FirstSlot (Unix ns / SlotNs).
type Record struct {
	Type   string `json:"type"`
	Sensor string `json:"sensor"`
	Rule   string `json:"rule"`
	// Key is the prefix (CIDR) or target the counts are of.
	Key string `json:"key"`
	// Time is the end of the interval, packet time.
	Time        string   `json:"time"`
	SlotNs      int64    `json:"slot_ns"`
	FirstSlot   int64    `json:"first_slot"`
	EchoPackets []uint32 `json:"echo_packets"`
	EchoBytes   []uint64 `json:"echo_bytes"`
	AnyPackets  []uint32 `json:"any_packets"`
	AnyBytes    []uint64 `json:"any_bytes"`
	// PortUnreach (blacknurse) and TrainsOpened and TrainsCompleted
	// (frag_flood: packets are trains) are there when not all zero, with
	// as many slots as the echo and any arrays; a record without them
	// (an older sensor's) counts none.
	PortUnreachPackets     []uint32 `json:"port_unreach_packets,omitempty"`
	PortUnreachBytes       []uint64 `json:"port_unreach_bytes,omitempty"`
	TrainsOpenedPackets    []uint32 `json:"trains_opened_packets,omitempty"`
	TrainsOpenedBytes      []uint64 `json:"trains_opened_bytes,omitempty"`
	TrainsCompletedPackets []uint32 `json:"trains_completed_packets,omitempty"`
	TrainsCompletedBytes   []uint64 `json:"trains_completed_bytes,omitempty"`
	// HostsBitmap is the 512-bit linear-counting bitmap of the distinct
	// hosts hit, hex: several sensors' merge by OR.
	HostsBitmap string `json:"hosts_bitmap"`
	// SourcesHLL and HostsHLL are HyperLogLog registers (64 one-byte
	// registers, hex) of the distinct sources and hosts (icmp_carpet_flood)
	// of the key's packets over about the interval: several sensors'
	// merge by register-wise maximum. Left out when empty, and in an
	// older sensor's record.
	SourcesHLL string      `json:"sources_hll,omitempty"`
	HostsHLL   string      `json:"hosts_hll,omitempty"`
	TopHosts   []HostCount `json:"top_hosts,omitempty"`
	HostTotal  uint64      `json:"host_total"`
	// AttackID is the sensor's own attack of Rule on Key, when it has one
	// open: the fleet does not raise it a second time.
	AttackID string `json:"attack_id,omitempty"`
}

// HostCount is one top host and its packets.
type HostCount struct {
	IP      string `json:"ip"`
	Packets uint64 `json:"packets"`
}

// maxTopHosts is the most top hosts a record may list.
const maxTopHosts = 16

// timeLayout is EVE's timestamp layout.
const timeLayout = "2006-01-02T15:04:05.000000-0700"

// Encode returns the record of sensor's observation o, and its key.
func Encode(sensor string, o *detector.Observation) (key, value []byte, err error) {
	r := Record{
		Type: RecordType, Sensor: sensor, Rule: o.Rule,
		Key:       netip.PrefixFrom(o.Key, o.Bits).String(),
		SlotNs:    int64(o.SlotWidth),
		FirstSlot: o.FirstSlot,
		Time:      time.Unix(0, (o.FirstSlot+int64(o.Slots))*int64(o.SlotWidth)).UTC().Format(timeLayout),
		HostTotal: o.HostTotal,
	}
	for i := 0; i < o.Slots && i < detector.FleetSlots; i++ {
		r.EchoPackets = append(r.EchoPackets, o.Echo[i].Packets)
		r.EchoBytes = append(r.EchoBytes, o.Echo[i].Bytes)
		r.AnyPackets = append(r.AnyPackets, o.Any[i].Packets)
		r.AnyBytes = append(r.AnyBytes, o.Any[i].Bytes)
	}
	r.PortUnreachPackets, r.PortUnreachBytes = encodeClass(&o.PortUnreach, o.Slots)
	r.TrainsOpenedPackets, r.TrainsOpenedBytes = encodeClass(&o.TrainsOpened, o.Slots)
	r.TrainsCompletedPackets, r.TrainsCompletedBytes = encodeClass(&o.TrainsCompleted, o.Slots)
	var bm [64]byte
	for i, w := range o.Hosts {
		for j := 0; j < 8; j++ {
			bm[i*8+j] = byte(w >> (8 * j))
		}
	}
	r.HostsBitmap = hex.EncodeToString(bm[:])
	r.SourcesHLL, r.HostsHLL = encodeHLL(&o.Sources), encodeHLL(&o.HostsHLL)
	for _, t := range o.TopHosts {
		r.TopHosts = append(r.TopHosts, HostCount{IP: t.Addr.String(), Packets: t.Packets})
	}
	if !o.AttackStarted.IsZero() {
		id := output.AttackID(sensor, &detector.Event{Rule: detector.RuleInfo{Name: o.Rule}, Target: o.Key, Started: o.AttackStarted})
		r.AttackID = fmt.Sprintf("%016x", id)
	}
	value, err = json.Marshal(&r)
	return []byte(r.Key), value, err
}

// Decode parses a record into o (the sensor's name and attack id apart)
// and checks it.
func Decode(value []byte, o *detector.Observation) (*Record, error) {
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return nil, fmt.Errorf("observation: %w", err)
	}
	if r.Type != RecordType {
		return nil, fmt.Errorf("observation: type %q, want %s", r.Type, RecordType)
	}
	p, err := netip.ParsePrefix(r.Key)
	if err != nil {
		return nil, fmt.Errorf("observation: key: %w", err)
	}
	n := len(r.AnyPackets)
	if n == 0 || n > detector.FleetSlots || len(r.AnyBytes) != n || len(r.EchoPackets) != n || len(r.EchoBytes) != n {
		return nil, errors.New("observation: slot arrays of unequal or bad length")
	}
	for _, c := range []struct {
		name string
		p    []uint32
		b    []uint64
		to   *[detector.FleetSlots]detector.SlotCount
	}{
		{"port_unreach", r.PortUnreachPackets, r.PortUnreachBytes, &o.PortUnreach},
		{"trains_opened", r.TrainsOpenedPackets, r.TrainsOpenedBytes, &o.TrainsOpened},
		{"trains_completed", r.TrainsCompletedPackets, r.TrainsCompletedBytes, &o.TrainsCompleted},
	} {
		*c.to = [detector.FleetSlots]detector.SlotCount{}
		if len(c.p) == 0 && len(c.b) == 0 {
			continue
		}
		if len(c.p) != n || len(c.b) != n {
			return nil, fmt.Errorf("observation: %s arrays of %d and %d slots, want %d", c.name, len(c.p), len(c.b), n)
		}
		for i := range n {
			c.to[i] = detector.SlotCount{Packets: c.p[i], Bytes: c.b[i]}
		}
	}
	if len(r.TopHosts) > maxTopHosts {
		return nil, fmt.Errorf("observation: %d top_hosts, at most %d", len(r.TopHosts), maxTopHosts)
	}
	if r.Sensor == "" || len(r.Sensor) > 255 {
		return nil, errors.New("observation: sensor must be a name of 1 to 255 bytes")
	}
	if r.SlotNs <= 0 || r.SlotNs > int64(time.Minute) {
		return nil, errors.New("observation: slot_ns must be in (0, 1m]")
	}
	if r.FirstSlot < 0 || r.FirstSlot > math.MaxInt64/r.SlotNs-int64(n) {
		return nil, errors.New("observation: first_slot is out of range (the interval's end overflows)")
	}
	bm, err := hex.DecodeString(r.HostsBitmap)
	if err != nil || len(bm) != 64 {
		return nil, errors.New("observation: hosts_bitmap is not 128 hex digits")
	}
	pu, to, tc := o.PortUnreach, o.TrainsOpened, o.TrainsCompleted
	*o = detector.Observation{Rule: r.Rule, Key: p.Addr(), Bits: p.Bits(), SlotWidth: time.Duration(r.SlotNs),
		FirstSlot: r.FirstSlot, Slots: n, HostTotal: r.HostTotal, TopHosts: o.TopHosts[:0],
		PortUnreach: pu, TrainsOpened: to, TrainsCompleted: tc}
	for i := 0; i < n; i++ {
		o.Echo[i] = detector.SlotCount{Packets: r.EchoPackets[i], Bytes: r.EchoBytes[i]}
		o.Any[i] = detector.SlotCount{Packets: r.AnyPackets[i], Bytes: r.AnyBytes[i]}
	}
	if err := decodeHLL(r.SourcesHLL, &o.Sources); err != nil {
		return nil, fmt.Errorf("observation: sources_hll: %w", err)
	}
	if err := decodeHLL(r.HostsHLL, &o.HostsHLL); err != nil {
		return nil, fmt.Errorf("observation: hosts_hll: %w", err)
	}
	for i := range o.Hosts {
		for j := 0; j < 8; j++ {
			o.Hosts[i] |= uint64(bm[i*8+j]) << (8 * j)
		}
	}
	for _, t := range r.TopHosts {
		a, err := netip.ParseAddr(t.IP)
		if err != nil {
			return nil, fmt.Errorf("observation: top_hosts: %w", err)
		}
		o.TopHosts = append(o.TopHosts, detector.SourceCount{Addr: a, Packets: t.Packets})
	}
	return &r, nil
}

// encodeClass returns a class's first n slots as packet and byte arrays,
// or nil, nil when they are all zero (the class is not the rule's).
func encodeClass(c *[detector.FleetSlots]detector.SlotCount, n int) ([]uint32, []uint64) {
	n = min(n, detector.FleetSlots)
	zero := true
	for _, s := range c[:n] {
		if s.Packets != 0 || s.Bytes != 0 {
			zero = false
		}
	}
	if zero {
		return nil, nil
	}
	p, b := make([]uint32, n), make([]uint64, n)
	for i, s := range c[:n] {
		p[i], b[i] = s.Packets, s.Bytes
	}
	return p, b
}

// encodeHLL is h's registers in hex, "" when h is empty.
func encodeHLL(h *sketch.MiniHLL) string {
	if h.Empty() {
		return ""
	}
	reg := h.Registers()
	return hex.EncodeToString(reg[:])
}

// decodeHLL sets h from a record's hex registers ("": empty).
func decodeHLL(s string, h *sketch.MiniHLL) error {
	h.Reset()
	if s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	return h.SetRegisters(b)
}
