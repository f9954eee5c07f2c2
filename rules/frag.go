package rules

import (
	"net/netip"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/table"
)

// This file holds what the one-shot fragment rules (ping_of_death,
// frag_oversize, frag_overlap, frag_tiny) share: the fragment verdict comes
// from the engine's fragment tracker (detector/frag) in p.Frag, and each
// rule turns its flag into at most one alert per train. An alert limiter
// per rule and target keeps a flood of bad trains from becoming a flood of
// alerts: beyond AlertsPerMinute alerts to one target in a minute of packet
// time, alerts are counted, not sent, and the next alert sent to that
// target says how many were suppressed.

// alertLimit caps one-shot alerts per target and minute (packet time).
type alertLimit struct {
	perMinute  uint32
	targets    *table.Table[netip.Addr, limitEntry]
	suppressed uint64
	sweepClock sweepClock
}

type limitEntry struct {
	minute     int64 // start of the current minute, ns
	sent       uint32
	suppressed uint32 // since the last alert sent
}

func newAlertLimit(perMinute, maxTargets int) alertLimit {
	return alertLimit{perMinute: uint32(perMinute), targets: table.New[netip.Addr, limitEntry](maxTargets, nil)}
}

// allow reports whether an alert to target at now may be sent, and how
// many alerts to it were suppressed since the last one sent.
func (l *alertLimit) allow(target netip.Addr, now time.Time) (bool, uint32) {
	ns := now.UnixNano()
	e, _ := l.targets.Get(target, ns)
	if ns-e.minute >= int64(time.Minute) || ns < e.minute {
		e.minute, e.sent = ns, 0
	}
	if e.sent >= l.perMinute {
		e.suppressed++
		l.suppressed++
		return false, 0
	}
	e.sent++
	s := e.suppressed
	e.suppressed = 0
	return true, s
}

// sweep drops targets idle for over a minute; it runs once a minute.
func (l *alertLimit) sweep(now time.Time) {
	if !l.sweepClock.due(now, time.Minute) {
		return
	}
	before := now.Add(-time.Minute).UnixNano()
	l.targets.Sweep(func(_ netip.Addr, e *limitEntry, touched int64) bool {
		return touched < before && e.suppressed == 0
	})
}

func (l *alertLimit) stat(name string) detector.TableStat {
	return detector.TableStat{Name: name, Len: l.targets.Len(), Cap: l.targets.Cap(), Evicted: l.targets.Evicted()}
}

// oneShotKeys documents the settings every one-shot fragment rule has.
func oneShotKeys() map[string]string {
	return map[string]string{
		"alerts_per_minute": "At most this many alerts per target per minute of packet time; the ones held back are counted in the next alert (a flood of bad trains must not become a flood of alerts).",
		"max_targets":       "Cap on targets with an alert budget (least recently seen evicted).",
	}
}

// validateOneShot checks the settings every one-shot fragment rule has.
func validateOneShot(rule string, alertsPerMinute, maxTargets int) error {
	k := newCheck(rule)
	k.count("alerts_per_minute", alertsPerMinute, 1, 1_000_000)
	k.count("max_targets", maxTargets, 1, 1<<24)
	return k.err()
}

// fragContext is the alert context every fragment rule gives: what the
// tracker knows of the train.
func fragContext(p *detector.Packet, suppressed uint32) map[string]any {
	basis := "ipv4_total_length"
	if p.IPv6 {
		basis = "ipv6_payload_length"
	}
	m := map[string]any{
		"reassembled_size":       p.Frag.Size,
		"size_basis":             basis,
		"fragments":              p.Frag.Frags,
		"ip_id":                  p.FragID,
		"fragment_offset":        p.FragOffset,
		"fragment_length":        p.FragLen,
		"first_fragment_seen":    p.Frag.FirstSeen,
		"first_was_echo_request": p.Frag.FirstEcho,
		"train_proto":            detector.ProtoName(p.Frag.Proto),
	}
	if suppressed > 0 {
		m["suppressed_alerts"] = suppressed
	}
	return m
}
