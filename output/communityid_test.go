package output

import (
	"net/netip"
	"testing"
)

// TestCommunityIDVectors: the spec's published examples (community-id-spec,
// README and baseline), both directions of each two-way exchange.
func TestCommunityIDVectors(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		src, dst     string
		proto        uint8
		sport, dport uint16
		want         string
	}{
		{"128.232.110.120", "66.35.250.204", 6, 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"66.35.250.204", "128.232.110.120", 6, 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"192.168.0.89", "192.168.0.1", 1, 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"192.168.0.1", "192.168.0.89", 1, 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
		{"fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 58, 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
		{"fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 58, 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
	}
	for _, tc := range tests {
		if got := CommunityID(a(tc.src), a(tc.dst), tc.proto, tc.sport, tc.dport); got != tc.want {
			t.Errorf("%s → %s proto %d %d/%d: %s, want %s", tc.src, tc.dst, tc.proto, tc.sport, tc.dport, got, tc.want)
		}
	}
}
