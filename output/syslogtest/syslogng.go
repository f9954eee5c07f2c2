package syslogtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/internal/testenv"
)

// SyslogNG is a syslog-ng the test runs on loopback, with an RFC 3164
// network() source and an RFC 5424 syslog() source, each on TCP, UDP and TLS,
// writing every message it parsed to a file: source, host, program, MSGID
// and message, tab-separated.
//
// Debian's syslog-ng-core conflicts with rsyslog as a package, so CI
// unpacks it (apt-get download; dpkg -x) into a directory named by
// ICMPIDS_TEST_SYSLOGNG_ROOT; a syslog-ng on PATH is used otherwise.
type SyslogNG struct {
	t        testing.TB
	dir, out string
	ports    map[string]int // "3164/tcp", "3164/udp", "3164/tls", "5424/tcp", …
	cmd      *exec.Cmd
	// CAFile is the PEM file of the CA that signed the TLS sources'
	// certificate (names: localhost, 127.0.0.1).
	CAFile string
}

// NGLine is one message syslog-ng parsed.
type NGLine struct {
	Source, Host, Program, MsgID, Msg string
}

// StartSyslogNG runs syslog-ng for the test and stops it at cleanup.
func StartSyslogNG(t testing.TB) *SyslogNG {
	t.Helper()
	bin, env, modules, err := findSyslogNG()
	if err != nil {
		testenv.Missing(t, "syslog-ng not available (set ICMPIDS_TEST_SYSLOGNG_ROOT to an unpacked syslog-ng-core, as .ci/run does, or install it): %v", err)
	}
	dir := t.TempDir()
	s := &SyslogNG{t: t, dir: dir, out: filepath.Join(dir, "out.tsv"), ports: map[string]int{}}
	s.CAFile = writeCerts(t, dir)
	var sources, logs strings.Builder
	for _, format := range []string{"3164", "5424"} {
		driver := map[string]string{"3164": "network", "5424": "syslog"}[format]
		for _, transport := range []string{"tcp", "udp", "tls"} {
			k := format + "/" + transport
			network := transport
			if network == "tls" {
				network = "tcp"
			}
			s.ports[k] = freePort(t, network)
			tls := ""
			if transport == "tls" {
				tls = fmt.Sprintf(` tls(key-file(%q) cert-file(%q) peer-verify(optional-untrusted))`,
					filepath.Join(dir, "server-key.pem"), filepath.Join(dir, "server.pem"))
			}
			name := "s" + format + transport
			fmt.Fprintf(&sources, "source %s { %s(ip(\"127.0.0.1\") port(%d) transport(%q)%s log-msg-size(65536)); };\n",
				name, driver, s.ports[k], transport, tls)
			fmt.Fprintf(&logs, " source(%s);", name)
		}
	}
	conf := fmt.Sprintf(`@version: 3.38
options { keep-hostname(yes); chain-hostnames(no); stats-freq(0); log-msg-size(65536); };
%sdestination d { file(%q template("${SOURCE}\t${HOST}\t${PROGRAM}\t${MSGID}\t${MESSAGE}\n")); };
log {%s destination(d); };
`, sources.String(), s.out, logs.String())
	cfg := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-F", "--no-caps", "-f", cfg, "-p", filepath.Join(dir, "pid"), "-R", filepath.Join(dir, "persist"), "-c", filepath.Join(dir, "ctl")}
	if modules != "" {
		args = append(args, "--module-path="+modules)
	}
	log, err := os.Create(filepath.Join(dir, "syslog-ng.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting syslog-ng: %v", err)
	}
	s.cmd = cmd
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.ports["5424/tcp"]))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "syslog-ng.log"))
			t.Fatalf("syslog-ng did not start: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// findSyslogNG returns the binary, its environment and module path.
func findSyslogNG() (bin string, env []string, modules string, err error) {
	if root := os.Getenv("ICMPIDS_TEST_SYSLOGNG_ROOT"); root != "" {
		bin = filepath.Join(root, "usr", "sbin", "syslog-ng")
		if _, err := os.Stat(bin); err != nil {
			return "", nil, "", err
		}
		mods, _ := filepath.Glob(filepath.Join(root, "usr", "lib", "syslog-ng", "3.*"))
		if len(mods) > 0 {
			modules = mods[0]
		}
		lib := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu") + ":" + filepath.Join(root, "usr", "lib", "syslog-ng")
		return bin, []string{"LD_LIBRARY_PATH=" + lib}, modules, nil
	}
	bin, err = exec.LookPath("syslog-ng")
	return bin, nil, "", err
}

// URL returns the collector URL of a source: format "3164" or "5424",
// transport "tcp", "udp" or "tls".
func (s *SyslogNG) URL(format, transport string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d", transport, s.ports[format+"/"+transport])
}

// Lines returns what syslog-ng wrote so far.
func (s *SyslogNG) Lines() []NGLine {
	b, _ := os.ReadFile(s.out)
	var out []NGLine
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, "\t", 5)
		for len(f) < 5 {
			f = append(f, "")
		}
		out = append(out, NGLine{Source: f[0], Host: f[1], Program: f[2], MsgID: f[3], Msg: f[4]})
	}
	return out
}

// WaitLines waits until at least n lines are written, or timeout.
func (s *SyslogNG) WaitLines(n int, timeout time.Duration) []NGLine {
	deadline := time.Now().Add(timeout)
	for {
		l := s.Lines()
		if len(l) >= n || time.Now().After(deadline) {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
}
