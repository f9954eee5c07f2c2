package rules

import (
	"time"

	"github.com/icmpids/icmpids/detector"
)

var tinyInfo = detector.RuleInfo{
	Name:        "frag_tiny",
	SignatureID: 9000005,
	Rev:         1,
	Signature:   "IP first fragment too short for its transport header",
	Category:    "Attempted Denial of Service",
	Severity:    3,
	OneShot:     true,
}

// fragTinyDefinition registers frag_tiny.
func fragTinyDefinition() Definition {
	return define(tinyInfo,
		"frag_tiny: a first fragment too short for its upper-layer header (8 bytes for ICMP, ICMPv6 and UDP; 20 for TCP: RFC 1858's tiny-fragment attack).",
		oneShotKeys(),
		DefaultFragTinyConfig,
		func(c FragTinyConfig) (detector.Rule, error) { return NewFragTiny(c), nil })
}

// FragTinyConfig configures frag_tiny.
type FragTinyConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// AlertsPerMinute caps the alerts to one target per minute of packet
	// time; further ones are counted and reported with the next alert.
	AlertsPerMinute int `mapstructure:"alerts_per_minute"`
	// MaxTargets caps the per-target alert-limit table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultFragTinyConfig returns frag_tiny's defaults: on, at most 10
// alerts per target and minute, 4,096 targets.
func DefaultFragTinyConfig() FragTinyConfig {
	return FragTinyConfig{Enabled: true, AlertsPerMinute: 10, MaxTargets: 4096}
}

// Validate checks the settings; errors name the configuration key.
func (c FragTinyConfig) Validate() error {
	return validateOneShot("frag_tiny", c.AlertsPerMinute, c.MaxTargets)
}

// FragTiny is the frag_tiny rule. It raises one alert per fragment train
// whose first fragment (offset 0, more fragments to come) is too short to
// hold the whole upper-layer header: 8 bytes for ICMP, ICMPv6 and UDP, 20
// for TCP (the fixed header, RFC 1858's tiny-fragment attack). For IPv6
// the bytes counted start after the extension headers that follow the
// fragment header (RFC 7112 wants the whole header chain in the first
// fragment), and a first fragment whose extension-header chain itself runs
// on into the next fragment is tiny whatever its protocol (the alert says
// header_chain_incomplete). Other protocols are not checked. Target: the
// destination.
// The header sizes are the protocols' own; there is no threshold to tune.
type FragTiny struct {
	limit alertLimit
}

// NewFragTiny returns the frag_tiny rule.
func NewFragTiny(cfg FragTinyConfig) *FragTiny {
	return &FragTiny{limit: newAlertLimit(cfg.AlertsPerMinute, cfg.MaxTargets)}
}

// Info implements detector.Rule.
func (r *FragTiny) Info() detector.RuleInfo { return tinyInfo }

// Observe implements detector.Rule.
func (r *FragTiny) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.Frag.Tiny {
		return
	}
	ok, suppressed := r.limit.allow(p.Dst, p.Time)
	if !ok {
		return
	}
	extra := fragContext(p, suppressed)
	extra["first_fragment_upper_bytes"] = p.Frag.TinyLen
	if p.FragChainIncomplete {
		extra["header_chain_incomplete"] = true // RFC 7112
	}
	rep.Alert(p.Dst, p, extra)
}

// Interest implements detector.Interested: fragments only.
func (r *FragTiny) Interest() detector.Interest { return detector.Interest{Fragments: true} }

// Tick implements detector.Rule.
func (r *FragTiny) Tick(now time.Time, _ detector.Reporter) { r.limit.sweep(now) }

// Tables implements detector.TableReporter.
func (r *FragTiny) Tables() []detector.TableStat {
	return []detector.TableStat{r.limit.stat("frag_tiny.alert_limit")}
}
