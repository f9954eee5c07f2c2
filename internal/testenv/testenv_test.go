package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatalf instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skip(args ...any)               { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestTool(t *testing.T) {
	for _, tc := range []struct {
		name, ci, tool      string
		skips, fails, found bool
		want                string // in the message
	}{
		{"missing outside CI skips", "", "no-such-tool-icmpids", true, false, false, "no-such-tool-icmpids is not installed"},
		{"missing in CI fails", "true", "no-such-tool-icmpids", false, true, false, "CI must have it"},
		{"present", "true", "sh", false, false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			path := Tool(r, tc.tool)
			if (r.skipped != "") != tc.skips || (r.failed != "") != tc.fails || (path != "") != tc.found {
				t.Errorf("path %q, skipped %q, failed %q: want skip %v, fail %v, found %v", path, r.skipped, r.failed, tc.skips, tc.fails, tc.found)
			}
			if !strings.Contains(r.skipped+r.failed, tc.want) {
				t.Errorf("message %q lacks %q", r.skipped+r.failed, tc.want)
			}
		})
	}
}

func TestDebianPackage(t *testing.T) {
	for tool, want := range map[string]string{"ping": "iputils-ping", "ip": "iproute2", "hping3": "hping3", "unknown": ""} {
		if got := debianPackage(tool); got != want {
			t.Errorf("debianPackage(%q) = %q, want %q", tool, got, want)
		}
	}
}
