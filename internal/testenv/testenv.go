// Package testenv decides what a test does when the machine lacks what it
// needs (a tool such as ping, ip, hping3 or promtool, a shared file):
// outside CI the test is skipped, saying what is missing and how to get
// it; in CI (the environment variable CI set), where .ci/run installs
// everything, the test fails, so that a missing install step is never a
// silent skip. Every test of the repository that needs something from the
// machine goes through it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI tells whether the tests run in CI (CI set, as .ci/run's caller
// sets CI=true).
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips t outside CI and fails it in CI, with the message
// format and args say (what is missing, why, how to get it).
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI must have it: .ci/run installs it)", msg)
		return
	}
	t.Skip(msg)
}

// debianPackage names the Debian package of a tool the tests run, for
// the message of a missing one ("" when not known).
func debianPackage(tool string) string {
	switch tool {
	case "ping":
		return "iputils-ping"
	case "ip":
		return "iproute2"
	case "nc":
		return "netcat-openbsd"
	case "promtool":
		return "prometheus"
	case "systemd-analyze":
		return "systemd"
	case "rsyslogd":
		return "rsyslog"
	case "/usr/bin/python3":
		return "python3-scapy"
	case "tcpdump", "hping3", "nmap", "logrotate", "dpkg", "radvd", "ptunnel-ng", "chromium":
		return tool
	}
	return ""
}

// Tool returns the path of the command name, found in PATH (or name
// itself when it is a path). When it is not there the test is skipped
// outside CI and fails in CI (Missing).
func Tool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		hint := ""
		if pkg := debianPackage(name); pkg != "" {
			hint = " (apt-get install " + pkg + ")"
		}
		Missing(t, "%s is not installed%s: %v", name, hint, err)
	}
	return path
}

// Tools is Tool for each of names.
func Tools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		Tool(t, n)
	}
}
