package rules_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/icmpids/icmpids/rules"
)

// TestSpecsFollowTheContract: every rule of the contract, in its order,
// with its stable name and signature id.
func TestSpecsFollowTheContract(t *testing.T) {
	specs, err := rules.Specs(rules.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		i := s.Rule.Info()
		got = append(got, fmt.Sprintf("%s:%d:%v", i.Name, i.SignatureID, s.Enabled))
	}
	want := "icmp_flood:9000001:true ping_of_death:9000002:true frag_oversize:9000003:true " +
		"frag_overlap:9000004:true frag_tiny:9000005:true frag_flood:9000006:true smurf:9000007:true"
	if strings.Join(got, " ") != want {
		t.Fatalf("specs %v\nwant %s", got, want)
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
	if got := strings.Join(names, " "); got != "icmp_flood ping_of_death frag_oversize frag_overlap frag_flood" {
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
