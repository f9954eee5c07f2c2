package rules

import "testing"

// PerEngine divides the caps of the rules keyed by target or source, with
// a floor, keeps the link-scope rules' caps, and leaves c as it was.
func TestPerEngine(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		engines                    int
		flood, errHosts, smurfPend int
	}{
		{1, 65536, 16384, 65536},
		{3, 21845, 5461, 21845},
		{7, 9362, 2340, 9362},
		{1000, minEngineCap, minEngineCap, minEngineCap},
	} {
		per := c.PerEngine(tc.engines)
		got := []int{per["icmp_flood"].(*FloodConfig).MaxTargets, per["icmp_error_abuse"].(*ErrorAbuseConfig).MaxHosts, per["smurf"].(*SmurfConfig).MaxPending}
		if want := []int{tc.flood, tc.errHosts, tc.smurfPend}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("%d engines: caps %v, want %v", tc.engines, got, want)
		}
		if n := per["nd_spoof"].(*NDSpoofConfig).MaxBindings; n != c["nd_spoof"].(*NDSpoofConfig).MaxBindings {
			t.Errorf("%d engines: nd_spoof (link scope) max_bindings %d, want it kept", tc.engines, n)
		}
		if err := per.Validate(); err != nil {
			t.Errorf("%d engines: %v", tc.engines, err)
		}
		if _, err := Enabled(per); err != nil {
			t.Errorf("%d engines: %v", tc.engines, err)
		}
	}
	if n := c["icmp_flood"].(*FloodConfig).MaxTargets; n != 65536 {
		t.Errorf("PerEngine changed its receiver: max_targets %d", n)
	}
	// A cap below the floor stays as configured.
	small := DefaultConfig()
	small["icmp_flood"].(*FloodConfig).MaxTargets = 100
	if n := small.PerEngine(8)["icmp_flood"].(*FloodConfig).MaxTargets; n != 100 {
		t.Errorf("a cap of 100 over 8 engines became %d, want 100", n)
	}
}
