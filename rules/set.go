package rules

import (
	"errors"
	"fmt"

	"github.com/icmpids/icmpids/detector"
)

// Config holds every rule's settings by rule name: the rules: block of
// the configuration file.
type Config struct {
	Flood        FloodConfig        `mapstructure:"icmp_flood"`
	PingOfDeath  PingOfDeathConfig  `mapstructure:"ping_of_death"`
	FragOversize FragOversizeConfig `mapstructure:"frag_oversize"`
	FragOverlap  FragOverlapConfig  `mapstructure:"frag_overlap"`
	FragTiny     FragTinyConfig     `mapstructure:"frag_tiny"`
	FragFlood    FragFloodConfig    `mapstructure:"frag_flood"`
	Smurf        SmurfConfig        `mapstructure:"smurf"`
}

// DefaultConfig returns every rule's defaults.
func DefaultConfig() Config {
	return Config{
		Flood:        DefaultFloodConfig(),
		PingOfDeath:  DefaultPingOfDeathConfig(),
		FragOversize: DefaultFragOversizeConfig(),
		FragOverlap:  DefaultFragOverlapConfig(),
		FragTiny:     DefaultFragTinyConfig(),
		FragFlood:    DefaultFragFloodConfig(),
		Smurf:        DefaultSmurfConfig(),
	}
}

// Validate checks every rule's settings; errors name the key.
func (c Config) Validate() error {
	return errors.Join(c.Flood.Validate(), c.PingOfDeath.Validate(), c.FragOversize.Validate(),
		c.FragOverlap.Validate(), c.FragTiny.Validate(), c.FragFlood.Validate(), c.Smurf.Validate())
}

// Spec is one configured rule: built, whether it is enabled, and its
// settings (the rule's Config struct).
type Spec struct {
	Rule     detector.Rule
	Enabled  bool
	Settings any
}

// Specs builds every rule from c, enabled or not, in the contract's order.
// icmp_flood leaves smurf's packets to smurf when smurf is enabled, so a
// reflection attack is reported once (see Flood).
func Specs(c Config) ([]Spec, error) {
	smurf, err := NewSmurf(c.Smurf)
	if err != nil {
		return nil, fmt.Errorf("rules.smurf: %w", err)
	}
	var claimers []Claimer
	if c.Smurf.Enabled {
		claimers = append(claimers, smurf)
	}
	return []Spec{
		{NewFlood(c.Flood, claimers...), c.Flood.Enabled, c.Flood},
		{NewPingOfDeath(c.PingOfDeath), c.PingOfDeath.Enabled, c.PingOfDeath},
		{NewFragOversize(c.FragOversize), c.FragOversize.Enabled, c.FragOversize},
		{NewFragOverlap(c.FragOverlap), c.FragOverlap.Enabled, c.FragOverlap},
		{NewFragTiny(c.FragTiny), c.FragTiny.Enabled, c.FragTiny},
		{NewFragFlood(c.FragFlood), c.FragFlood.Enabled, c.FragFlood},
		{smurf, c.Smurf.Enabled, c.Smurf},
	}, nil
}

// Enabled builds the enabled rules of c, in the contract's order, with
// fresh state: what one engine runs.
func Enabled(c Config) ([]detector.Rule, error) {
	specs, err := Specs(c)
	if err != nil {
		return nil, err
	}
	var rs []detector.Rule
	for _, s := range specs {
		if s.Enabled {
			rs = append(rs, s.Rule)
		}
	}
	return rs, nil
}
