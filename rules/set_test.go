package rules_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/rules"
)

// contractRules are the contract's rule names (docs/contract.md), in its
// order, with the signature ids they were released with.
var contractRules = []string{
	"icmp_flood:9000001", "ping_of_death:9000002", "frag_oversize:9000003", "frag_overlap:9000004",
	"frag_tiny:9000005", "frag_flood:9000006", "smurf:9000007", "blacknurse:9000008",
	"icmp_redirect:9000009", "icmp_sweep:9000010", "icmp_tunnel:9000011", "icmp_carpet_flood:9000012",
	"ra_flood:9000013", "rogue_ra:9000014", "nd_flood:9000015", "nd_spoof:9000016", "icmp_error_abuse:9000017",
	"decode_anomaly:9000018", // proposed for the contract (issue 26.8)
}

// TestSpecsFollowTheContract: the registry holds contract rules only, in
// the contract's order, with their stable names and signature ids, all
// enabled by default.
func TestSpecsFollowTheContract(t *testing.T) {
	specs, err := rules.Specs(rules.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, s := range specs {
		i := s.Rule.Info()
		got := fmt.Sprintf("%s:%d", i.Name, i.SignatureID)
		for next < len(contractRules) && contractRules[next] != got {
			next++
		}
		if next == len(contractRules) {
			t.Errorf("rule %s is not in the contract, or out of its order", got)
			next = 0
		}
		if !s.Enabled {
			t.Errorf("rule %s is off by default", i.Name)
		}
	}
}

func TestEnabledLeavesOutDisabledRules(t *testing.T) {
	cfg := rules.DefaultConfig()
	for _, name := range []string{"frag_tiny", "smurf"} {
		if err := cfg.SetEnabled(name, false); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := rules.Enabled(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Info().Name)
	}
	if got := strings.Join(names, " "); strings.Contains(got, "frag_tiny") || strings.Contains(got, "smurf") || !strings.HasPrefix(got, "icmp_flood ping_of_death frag_oversize frag_overlap frag_flood") {
		t.Fatalf("enabled rules: %s", got)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	cfg := rules.DefaultConfig()
	cfg["smurf"].(*rules.SmurfConfig).HomeNetworks = []string{"10.0.0.0/33"}
	cfg["frag_flood"].(*rules.FragFloodConfig).TrainsPPS = 0
	err := cfg.Validate()
	for _, key := range []string{"rules.smurf.home_networks[0]", "rules.frag_flood.trains_pps"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
	if err := rules.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

// TestValidateBoundsReadAsWritten: a duration out of range is reported
// with its bounds as a person writes them (1m, 10m, 1h), the same way by
// every rule.
func TestValidateBoundsReadAsWritten(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"icmp_flood window", rules.FloodConfig{Window: 2 * time.Minute, EchoPPS: 1, EchoBPS: 1, AnyPPS: 1, AnyBPS: 1, StopRatio: 0.5, MaxTargets: 1}.Validate(),
			"rules.icmp_flood.window: 2m0s is out of range [10ms, 1m]"},
		{"smurf request_timeout", func() error {
			c := rules.DefaultSmurfConfig()
			c.RequestTimeout = time.Hour
			return c.Validate()
		}(), "rules.smurf.request_timeout: 1h0m0s is out of range [10ms, 10m]"},
		{"icmp_error_abuse window", func() error {
			c := rules.DefaultErrorAbuseConfig()
			c.Window = 2 * time.Hour
			return c.Validate()
		}(), "rules.icmp_error_abuse.window: 2h0m0s is out of range [1s, 1h]"},
		{"frag_flood window", func() error {
			c := rules.DefaultFragFloodConfig()
			c.Window = 1500 * time.Microsecond
			return c.Validate()
		}(), "rules.frag_flood.window: 1.5ms is out of range [10ms, 1m]"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}
