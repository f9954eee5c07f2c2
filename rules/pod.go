package rules

import (
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/frag"
)

var podInfo = detector.RuleInfo{
	Name:        "ping_of_death",
	SignatureID: 9000002,
	Rev:         1,
	Signature:   "ICMP Ping of Death (fragment reassembly exceeds 65535 bytes)",
	Category:    "Attempted Denial of Service",
	Severity:    1,
	OneShot:     true,
}

var oversizeInfo = detector.RuleInfo{
	Name:        "frag_oversize",
	SignatureID: 9000003,
	Rev:         1,
	Signature:   "IP fragment reassembly exceeds 65535 bytes",
	Category:    "Attempted Denial of Service",
	Severity:    2,
	OneShot:     true,
}

// pingOfDeathDefinition registers ping_of_death.
func pingOfDeathDefinition() Definition {
	return define(podInfo,
		"ping_of_death: an ICMP/ICMPv6 fragment train whose reassembly would exceed 65,535 bytes (IPv4: header + largest offset + length; IPv6: the payload length). One alert per train, at the fragment that crosses the line.",
		oneShotKeys(),
		DefaultPingOfDeathConfig,
		func(c PingOfDeathConfig) (detector.Rule, error) { return NewPingOfDeath(c), nil })
}

// fragOversizeDefinition registers frag_oversize.
func fragOversizeDefinition() Definition {
	return define(oversizeInfo,
		"frag_oversize: the same oversize check for any other protocol.",
		oneShotKeys(),
		DefaultFragOversizeConfig,
		func(c FragOversizeConfig) (detector.Rule, error) { return NewFragOversize(c), nil })
}

// PingOfDeathConfig configures ping_of_death.
type PingOfDeathConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// AlertsPerMinute caps the alerts to one target per minute of packet
	// time; further ones are counted and reported with the next alert.
	AlertsPerMinute int `mapstructure:"alerts_per_minute"`
	// MaxTargets caps the per-target alert-limit table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultPingOfDeathConfig returns ping_of_death's defaults: on, at most 10
// alerts per target and minute, 4,096 targets.
func DefaultPingOfDeathConfig() PingOfDeathConfig {
	return PingOfDeathConfig{Enabled: true, AlertsPerMinute: 10, MaxTargets: 4096}
}

// Validate checks the settings; errors name the configuration key.
func (c PingOfDeathConfig) Validate() error {
	return validateOneShot("ping_of_death", c.AlertsPerMinute, c.MaxTargets)
}

// FragOversizeConfig configures frag_oversize.
type FragOversizeConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// AlertsPerMinute caps the alerts to one target per minute of packet
	// time; further ones are counted and reported with the next alert.
	AlertsPerMinute int `mapstructure:"alerts_per_minute"`
	// MaxTargets caps the per-target alert-limit table.
	MaxTargets int `mapstructure:"max_targets"`
}

// DefaultFragOversizeConfig returns frag_oversize's defaults: on, at most
// 10 alerts per target and minute, 4,096 targets.
func DefaultFragOversizeConfig() FragOversizeConfig {
	return FragOversizeConfig{Enabled: true, AlertsPerMinute: 10, MaxTargets: 4096}
}

// Validate checks the settings; errors name the configuration key.
func (c FragOversizeConfig) Validate() error {
	return validateOneShot("frag_oversize", c.AlertsPerMinute, c.MaxTargets)
}

// oversize is ping_of_death and frag_oversize: one rule body, two names.
type oversize struct {
	info  detector.RuleInfo
	icmp  bool
	limit alertLimit
}

// Observe implements detector.Rule: at the fragment whose train's
// reassembled size first exceeds 65,535 bytes, one alert to the
// destination, if the train's protocol is this rule's.
func (r *oversize) Observe(p *detector.Packet, rep detector.Reporter) {
	if !p.Frag.Oversize || p.Frag.ICMP != r.icmp {
		return
	}
	ok, suppressed := r.limit.allow(p.Dst, p.Time)
	if !ok {
		return
	}
	extra := fragContext(p, suppressed)
	extra["size_limit"] = frag.MaxDatagram
	rep.Alert(p.Dst, p, extra)
}

// Info implements detector.Rule.
func (r *oversize) Info() detector.RuleInfo { return r.info }

// Interest implements detector.Interested: fragments only.
func (r *oversize) Interest() detector.Interest { return detector.Interest{Fragments: true} }

// Tick implements detector.Rule.
func (r *oversize) Tick(now time.Time, _ detector.Reporter) { r.limit.sweep(now) }

// Tables implements detector.TableReporter.
func (r *oversize) Tables() []detector.TableStat {
	return []detector.TableStat{r.limit.stat(r.info.Name + ".alert_limit")}
}

// PingOfDeath is the ping_of_death rule. It raises one alert per
// ICMP/ICMPv6 fragment train whose reassembled size exceeds 65,535 bytes,
// at the fragment that crosses the line, with the destination as target.
// The size is computed in int from the header fields, never the captured
// bytes: for IPv4 the total length, IHL*4 of the first fragment (of the
// crossing fragment while the first is unseen) + the largest offset+length
// seen; for IPv6 the payload length the 16-bit field could not express,
// unfragmentable extension headers + the largest offset+length seen (the
// 40-byte base header is not counted, RFC 8200). A single fragment ending
// past the limit is enough: the first fragment need not have been seen.
// The train is ICMP when its protocol is 1 (IPv4) or 58 (IPv6), taken from
// the first fragment's upper-layer protocol once seen. The alert gives the
// computed size, fragment count, IP id and whether the first fragment was
// seen and was an echo request. There is no threshold to tune: 65,535 is
// the protocol's limit.
type PingOfDeath struct{ oversize }

// NewPingOfDeath returns the ping_of_death rule.
func NewPingOfDeath(cfg PingOfDeathConfig) *PingOfDeath {
	return &PingOfDeath{oversize{info: podInfo, icmp: true, limit: newAlertLimit(cfg.AlertsPerMinute, cfg.MaxTargets)}}
}

// FragOversize is the frag_oversize rule: ping_of_death's check, computed
// the same way, for trains of any protocol other than ICMP/ICMPv6 (UDP,
// TCP, unknown). One alert per train, target the destination.
type FragOversize struct{ oversize }

// NewFragOversize returns the frag_oversize rule.
func NewFragOversize(cfg FragOversizeConfig) *FragOversize {
	return &FragOversize{oversize{info: oversizeInfo, icmp: false, limit: newAlertLimit(cfg.AlertsPerMinute, cfg.MaxTargets)}}
}
