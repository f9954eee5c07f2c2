package rules

import (
	"time"

	"github.com/icmpids/icmpids/detector"
)

var overlapInfo = detector.RuleInfo{
	Name:        "frag_overlap",
	SignatureID: 9000004,
	Rev:         1,
	Signature:   "IP fragments overlap with conflicting ranges (teardrop)",
	Category:    "Attempted Denial of Service",
	Severity:    2,
	OneShot:     true,
}

// fragOverlapDefinition registers frag_overlap.
func fragOverlapDefinition() Definition {
	return define(overlapInfo,
		"frag_overlap: a fragment whose range conflicts with what its train holds (teardrop, nestea, same range with different data). Exact duplicates are retransmissions, not conflicts.",
		oneShotKeys(),
		DefaultFragOverlapConfig,
		func(c FragOverlapConfig) (detector.Rule, error) { return NewFragOverlap(c), nil })
}

// FragOverlapConfig configures frag_overlap.
type FragOverlapConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// AlertsPerMinute caps the alerts to one target per minute of packet
	// time; further ones are counted and reported with the next alert.
	AlertsPerMinute int `mapstructure:"alerts_per_minute"`
	// MaxTargets caps the per-target alert-limit table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultFragOverlapConfig returns frag_overlap's defaults: on, at most 10
// alerts per target and minute, 4,096 targets.
func DefaultFragOverlapConfig() FragOverlapConfig {
	return FragOverlapConfig{Enabled: true, AlertsPerMinute: 10, MaxTargets: 4096}
}

// Validate checks the settings; errors name the configuration key.
func (c FragOverlapConfig) Validate() error {
	return validateOneShot("frag_overlap", c.AlertsPerMinute, c.MaxTargets)
}

// FragOverlap is the frag_overlap rule. It raises one alert per fragment
// train (any protocol, IPv4 and IPv6), at the first fragment that
// conflicts with what the train already holds, target the destination:
//   - overlap: its byte range overlaps another fragment's and is not the
//     same range (teardrop, nestea, Zeek's inconsistent fragments);
//   - different_data: it repeats a fragment's exact range with different
//     data (compared by CRC-32 of the captured data, not by copy) — the
//     overlap evasion THC's frag test 1 uses;
//   - past_end: it carries data past the end a last fragment declared, or
//     is a last fragment ending before data already seen;
//   - end_mismatch: two last fragments declare different ends;
//   - overlap_merged: it overlaps a range the tracker merged when the
//     train outgrew its 16 recorded fragments.
//
// An exact duplicate (same range, same data) is not a conflict: networks
// duplicate packets. Overlaps never make a ping_of_death: the reassembled
// size is the largest end, not a sum. No threshold: one conflicting
// fragment is enough.
type FragOverlap struct {
	limit alertLimit
}

// NewFragOverlap returns the frag_overlap rule.
func NewFragOverlap(cfg FragOverlapConfig) *FragOverlap {
	return &FragOverlap{limit: newAlertLimit(cfg.AlertsPerMinute, cfg.MaxTargets)}
}

// Info implements detector.Rule.
func (r *FragOverlap) Info() detector.RuleInfo { return overlapInfo }

// Observe implements detector.Rule.
func (r *FragOverlap) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.Frag.Overlap {
		return
	}
	ok, suppressed := r.limit.allow(p.Dst, p.Time)
	if !ok {
		return
	}
	extra := fragContext(p, suppressed)
	extra["conflict"] = p.Frag.Conflict.String()
	rep.Alert(p.Dst, p, extra)
}

// Interest implements detector.Interested: fragments only.
func (r *FragOverlap) Interest() detector.Interest { return detector.Interest{Fragments: true} }

// Tick implements detector.Rule.
func (r *FragOverlap) Tick(now time.Time, _ detector.Reporter) { r.limit.sweep(now) }

// Tables implements detector.TableReporter.
func (r *FragOverlap) Tables() []detector.TableStat {
	return []detector.TableStat{r.limit.stat("frag_overlap.alert_limit")}
}
