package output

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// maxKeptBuffer is the largest encoding buffer an EVE keeps between events;
// a larger one (a rule with huge context) is let go after use.
const maxKeptBuffer = 64 << 10

// EVE writes attack events as EVE JSON, one object a line, in the shape of
// the contract (Suricata's alert event, our figures in
// alert.context.attack). Each event is written to w in a single Write
// call. It is safe for concurrent use.
type EVE struct {
	mu     sync.Mutex
	w      io.Writer
	j      jsonBuf
	meta   Meta
	errs   uint64
	err    error
	events uint64
}

// NewEVE returns an EVE sink writing to w.
func NewEVE(w io.Writer) *EVE {
	return &EVE{w: w}
}

// Meta says which sensor and which input an event comes from: EVE's host,
// in_iface (live) and capture_file (replay). The zero value writes none.
type Meta struct {
	Host, InIface, CaptureFile string
}

// SetMeta sets what later events say of their sensor and input (a replay
// sets CaptureFile as it moves from file to file).
func (e *EVE) SetMeta(m Meta) {
	e.mu.Lock()
	e.meta = m
	e.mu.Unlock()
}

// Emit implements detector.Sink: it writes ev as one EVE alert line. A
// write error is kept (see Err) and counted; the event is lost.
func (e *EVE) Emit(ev *detector.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.j.b = e.j.b[:0]
	e.j.alert(ev, &e.meta)
	e.write()
}

// EmitStats writes s as one EVE stats line.
func (e *EVE) EmitStats(s *StatsEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.j.b = e.j.b[:0]
	e.j.stats(s)
	e.write()
}

func (e *EVE) write() {
	e.j.b = append(e.j.b, '\n')
	if _, err := e.w.Write(e.j.b); err != nil {
		e.errs++
		e.err = fmt.Errorf("eve: writing event: %w", err)
	} else {
		e.events++
	}
	if cap(e.j.b) > maxKeptBuffer {
		e.j.b = nil
	}
}

// Err returns the last write error, or nil if no write has failed.
func (e *EVE) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Counts returns how many lines were written and how many writes failed.
func (e *EVE) Counts() (written, failed uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events, e.errs
}

// AppendEVE appends ev as an EVE alert JSON object (no newline) to dst and
// returns the extended slice; for sinks that frame events themselves
// (syslog).
func AppendEVE(dst []byte, ev *detector.Event, meta *Meta) []byte {
	j := jsonBuf{b: dst}
	j.alert(ev, meta)
	return j.b
}

// AppendEVESeq is AppendEVE with alert.context.event_seq set to seq (not
// 0): the per-sensor sequence number of the Kafka output, by which a
// consumer drops the repeats of an at-least-once delivery.
func AppendEVESeq(dst []byte, ev *detector.Event, meta *Meta, seq uint64) []byte {
	j := jsonBuf{b: dst, seq: seq}
	j.alert(ev, meta)
	return j.b
}

// AttackID is an attack's identifier: the same on its start, updates and
// end, and distinct between attacks and sensors (a 64-bit FNV-1a hash of
// the sensor's name, the rule, the target and the attack's first packet
// time). FlowID, its low 53 bits (an integer every JSON reader keeps
// exact), is Suricata's flow_id, which SIEMs group an alert's events by.
func AttackID(host string, ev *detector.Event) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	add := func(b byte) { h = (h ^ uint64(b)) * prime }
	for i := 0; i < len(host); i++ {
		add(host[i])
	}
	add(0)
	for i := 0; i < len(ev.Rule.Name); i++ {
		add(ev.Rule.Name[i])
	}
	a := ev.Target.As16()
	for _, b := range a {
		add(b)
	}
	t := uint64(ev.Started.UnixNano())
	for i := 0; i < 8; i++ {
		add(byte(t >> (56 - 8*i)))
	}
	return h
}

// appendHex16 appends v as 16 hex digits.
func appendHex16(b []byte, v uint64) []byte {
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[v>>uint(i)&15])
	}
	return b
}

// FlowID is the flow_id of an attack id.
func FlowID(id uint64) int64 { return int64(id & (1<<53 - 1)) }

// AppendEVEStats appends s as an EVE stats JSON object (no newline) to dst
// and returns the extended slice.
func AppendEVEStats(dst []byte, s *StatsEvent) []byte {
	j := jsonBuf{b: dst}
	j.stats(s)
	return j.b
}

// alert writes the alert event object. Our figures go in
// alert.context.attack: the EVE schema closes every other object of an
// alert (alert.source and alert.target take only ip and port).
func (j *jsonBuf) alert(ev *detector.Event, meta *Meta) {
	if meta == nil {
		meta = &Meta{}
	}
	id := AttackID(meta.Host, ev)
	j.b = append(j.b, '{')
	j.time("timestamp", ev.Time)
	j.int("flow_id", FlowID(id))
	if meta.InIface != "" {
		j.str("in_iface", meta.InIface)
	}
	j.str("event_type", "alert")
	// src_ip is the attack's source as it started, the same on every
	// phase: SIEMs group by signature, src_ip and dest_ip.
	src := ev.FirstSource
	if !src.IsValid() {
		src = ev.Src
	}
	if src.IsValid() {
		j.addr("src_ip", src)
	}
	if ev.Dst.IsValid() {
		j.addr("dest_ip", ev.Dst)
	}
	j.str("proto", detector.ProtoName(ev.Proto))
	if ev.HasICMP {
		j.uint("icmp_type", uint64(ev.ICMPType))
		j.uint("icmp_code", uint64(ev.ICMPCode))
		// Community ID of the event's own src_ip, dest_ip, proto,
		// icmp_type and icmp_code, so any tool recomputes it from the
		// event (src_ip is the attack's first source, not necessarily the
		// triggering packet's).
		if src.IsValid() && ev.Dst.IsValid() {
			j.key("community_id")
			j.b = append(j.b, '"')
			j.b = appendCommunityID(j.b, src, ev.Dst, ev.Proto, uint16(ev.ICMPType), uint16(ev.ICMPCode))
			j.b = append(j.b, '"', ',')
		}
	}
	if meta.Host != "" {
		j.str("host", meta.Host)
	}
	if meta.CaptureFile != "" {
		j.str("capture_file", meta.CaptureFile)
	}
	if len(ev.VLANs) > 0 {
		j.key("vlan")
		j.b = append(j.b, '[')
		for i, v := range ev.VLANs {
			if i > 0 {
				j.b = append(j.b, ',')
			}
			j.b = strconv.AppendUint(j.b, uint64(v), 10)
		}
		j.b = append(j.b, ']', ',')
	}
	if t := ev.Tunnel; t.Depth > 0 {
		// Suricata's tunnel object: the outermost IP layer.
		j.openObj("tunnel")
		j.addr("src_ip", t.Src)
		j.addr("dest_ip", t.Dst)
		j.str("proto", detector.ProtoName(t.Proto))
		j.uint("depth", uint64(t.Depth))
		j.closeObj()
	}

	// Suricata's flow object: Filebeat's suricata module fills
	// source.packets, network.bytes and event.start/end/duration from it.
	j.openObj("flow")
	j.uint("pkts_toserver", ev.Packets)
	j.uint("bytes_toserver", ev.Bytes)
	j.time("start", ev.Started)
	if ev.Phase == detector.PhaseEnd {
		j.time("end", ev.Time)
	}
	j.closeObj()

	j.openObj("alert")
	j.str("action", "allowed")
	j.int("gid", 1)
	j.int("signature_id", int64(ev.Rule.SignatureID))
	j.int("rev", int64(ev.Rule.Rev))
	j.str("signature", ev.Rule.Signature)
	j.str("category", ev.Rule.Category)
	j.int("severity", int64(ev.Rule.Severity))
	if ev.Source.IsValid() {
		j.openObj("source")
		j.addr("ip", ev.Source)
		j.closeObj()
	}
	if ev.Target.IsValid() {
		j.openObj("target")
		j.addr("ip", ev.Target)
		j.closeObj()
	}
	j.openObj("context")
	j.openObj("attack")
	j.key("id")
	j.b = append(j.b, '"')
	j.b = appendHex16(j.b, id)
	j.b = append(j.b, '"', ',')
	j.attack(ev)
	j.closeObj() // attack
	if j.seq != 0 {
		j.uint("event_seq", j.seq)
	}
	j.closeObj() // context
	j.closeObj() // alert
	j.end()
	j.b = append(j.b, '}')
}

// attack writes the members of alert.context.attack. Rate figures appear
// for rate-based rules (a measuring window); the lifecycle figures
// (last_seen, duration_s) for rules that are not one-shot; end_reason on
// end events; then the rule's own context, keys sorted.
func (j *jsonBuf) attack(ev *detector.Event) {
	j.str("rule", ev.Rule.Name)
	j.str("phase", ev.Phase.String())
	j.addr("target", ev.Target)
	j.uint("sources", ev.Sources)
	if ev.SourcesEstimated {
		j.bool("sources_estimated", true)
	}
	j.uint("packets", ev.Packets)
	j.uint("bytes", ev.Bytes)
	if ev.Window > 0 && !ev.Rule.OneShot {
		j.rate("pps", ev.PPS)
		j.rate("bps", ev.BPS)
		j.rate("peak_pps", ev.PeakPPS)
		j.rate("peak_bps", ev.PeakBPS)
		j.seconds("window_s", ev.Window)
	}
	if ev.Threshold > 0 {
		j.rate("threshold_pps", ev.Threshold)
	}
	j.time("started", ev.Started)
	if !ev.Rule.OneShot {
		j.time("last_seen", ev.LastSeen)
		j.seconds("duration_s", ev.Duration())
	}
	if len(ev.TopSources) > 0 {
		j.key("top_sources")
		j.b = append(j.b, '[')
		for _, s := range ev.TopSources {
			j.b = append(j.b, '{')
			j.addr("ip", s.Addr)
			j.uint("packets", s.Packets)
			j.closeObj()
		}
		j.end()
		j.b = append(j.b, ']', ',')
	}
	if len(ev.ICMPTypes) > 0 {
		j.key("icmp_types")
		j.b = append(j.b, '[')
		for _, t := range ev.ICMPTypes {
			j.b = append(j.b, '{')
			j.uint("type", uint64(t.Type))
			j.uint("code", uint64(t.Code))
			j.uint("packets", t.Packets)
			j.closeObj()
		}
		j.end()
		j.b = append(j.b, ']', ',')
	}
	if ev.Phase == detector.PhaseEnd && ev.EndReason != "" {
		j.str("end_reason", ev.EndReason)
	}
	if len(ev.Extra) > 0 {
		j.fields(ev.Extra, attackKey, 1)
	}
}

// attackKey reports whether k is a member alert.context.attack has of its
// own, which a rule's Extra key must not repeat.
func attackKey(k string) bool {
	switch k {
	case "rule", "phase", "target", "sources", "sources_estimated", "packets", "bytes",
		"pps", "bps", "peak_pps", "peak_bps", "window_s", "threshold_pps",
		"started", "last_seen", "duration_s", "top_sources", "icmp_types", "end_reason":
		return true
	}
	return false
}

// StatsEvent is what an EVE stats event reports: the engine's counters and,
// for live capture, the capture's.
type StatsEvent struct {
	// Time stamps the event: wall time for a live sensor, packet time in
	// replay.
	Time time.Time
	// Uptime is how long the sensor has run.
	Uptime time.Duration
	// Engine holds the detection engine's counters.
	Engine detector.Stats
	// Capture holds the kernel/libpcap counters; nil for capture files.
	Capture *CaptureStats
	// AlertsDropped counts alert events the output queues dropped.
	AlertsDropped uint64
}

// CaptureStats are a live capture's counters as the kernel reports them.
type CaptureStats struct {
	Packets uint64 // packets received by the filter
	Drops   uint64 // packets dropped for lack of buffer space
	IfDrops uint64 // packets dropped by the interface or its driver
	// LinkDowns counts the times the capture interface went down (or
	// vanished) while the sensor ran; LinkUp is its state now.
	LinkDowns uint64
	LinkUp    bool
}

// stats writes the stats event in Suricata's shape. The EVE schema closes
// every object under "stats", so only figures with a Suricata name appear:
// capture.kernel_*, decoder.* and detect.alert (attacks started, one-shot
// alerts included) and detect.alert_queue_overflow (alerts the output
// queues dropped). Per-table and per-reason figures have no place there.
func (j *jsonBuf) stats(s *StatsEvent) {
	j.b = append(j.b, '{')
	j.time("timestamp", s.Time)
	j.str("event_type", "stats")
	j.openObj("stats")
	j.int("uptime", int64(s.Uptime/time.Second))
	if c := s.Capture; c != nil {
		j.openObj("capture")
		j.uint("kernel_packets", c.Packets)
		j.uint("kernel_drops", c.Drops)
		j.uint("kernel_ifdrops", c.IfDrops)
		j.closeObj()
	}
	e := &s.Engine
	j.openObj("decoder")
	j.uint("pkts", e.Frames)
	j.uint("bytes", e.Bytes)
	j.uint("invalid", e.DecodeErrors())
	j.uint("ipv4", e.IPv4)
	j.uint("ipv6", e.IPv6)
	j.uint("icmpv4", e.ICMP)
	j.uint("icmpv6", e.ICMPv6)
	if e.Frames > 0 {
		j.uint("avg_pkt_size", e.Bytes/e.Frames)
	}
	j.closeObj()
	j.openObj("detect")
	j.uint("alert", e.AttacksStarted)
	j.uint("alert_queue_overflow", s.AlertsDropped)
	j.closeObj()
	j.closeObj() // stats
	j.end()
	j.b = append(j.b, '}')
}
