// Package syslogtest runs a real rsyslogd for tests: on 127.0.0.1, with
// free ports for a UDP, a TCP and a TLS input (a CA and server certificate
// made on the spot), writing what it parsed of each message — the RFC 5424
// fields, structured data and body — to a file the test reads back.
//
// Start skips the test when rsyslogd (or its TLS driver) is not installed,
// except when the environment has CI set: there it fails, so that a CI
// machine without rsyslog cannot pass by skipping.
package syslogtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/internal/testenv"
)

// Line is one message as rsyslog parsed it.
type Line struct {
	Input    string // udp, tcp or tls
	Version  string // RFC 5424 VERSION ("1"), "0" for RFC 3164
	AppName  string
	MsgID    string
	ProcID   string
	Hostname string
	Facility string // e.g. local5
	Severity string // e.g. warning
	Time     string // TIMESTAMP as RFC 3339
	SD       string // structured data, "-" for none
	Msg      string // the body
}

// Rsyslog is a running (or stopped) rsyslogd.
type Rsyslog struct {
	t                         testing.TB
	Dir                       string
	UDPPort, TCPPort, TLSPort int
	// CAFile is the PEM file of the CA that signed the TLS input's
	// certificate (names: localhost, 127.0.0.1).
	CAFile string
	conf   string
	out    string
	pid    string
	cmd    *exec.Cmd
}

// Start runs rsyslogd for the test and stops it at cleanup.
func Start(t testing.TB) *Rsyslog {
	t.Helper()
	_, err := exec.LookPath("rsyslogd")
	if err == nil {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			if m, _ = filepath.Glob("/usr/lib/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
				err = fmt.Errorf("no lmnsd_gtls.so")
			}
		}
	}
	if err != nil {
		testenv.Missing(t, "rsyslogd with its gtls driver is not installed (apt-get install rsyslog rsyslog-gnutls): %v", err)
	}
	dir := t.TempDir()
	r := &Rsyslog{t: t, Dir: dir, conf: filepath.Join(dir, "rsyslog.conf"),
		out: filepath.Join(dir, "messages.tsv"), pid: filepath.Join(dir, "rsyslogd.pid")}
	r.UDPPort = freePort(t, "udp")
	r.TCPPort = freePort(t, "tcp")
	r.TLSPort = freePort(t, "tcp")
	r.CAFile = writeCerts(t, dir)
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k" net.enableDNS="off"
  defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[3]q
  defaultNetstreamDriverKeyFile=%[4]q)
module(load="imudp")
module(load="imtcp" maxSessions="200")
template(name="fields" type="string"
  string="%%inputname%%\t%%protocol-version%%\t%%app-name%%\t%%msgid%%\t%%procid%%\t%%hostname%%\t%%syslogfacility-text%%\t%%syslogseverity-text%%\t%%timereported:::date-rfc3339%%\t%%structured-data%%\t%%msg%%\n")
ruleset(name="out") {
  action(type="omfile" file=%[5]q template="fields")
}
input(type="imudp" address="127.0.0.1" port="%[6]d" name="udp" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="%[7]d" name="tcp" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="%[8]d" name="tls" ruleset="out"
  streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
`, dir, r.CAFile, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"),
		r.out, r.UDPPort, r.TCPPort, r.TLSPort)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.Kill)
	return r
}

// URL returns the collector URL of an input: "udp", "tcp" or "tls".
func (r *Rsyslog) URL(input string) string {
	port := map[string]int{"udp": r.UDPPort, "tcp": r.TCPPort, "tls": r.TLSPort}[input]
	return fmt.Sprintf("%s://127.0.0.1:%d", input, port)
}

func (r *Rsyslog) start() {
	r.t.Helper()
	os.Remove(r.pid)
	log, err := os.OpenFile(filepath.Join(r.Dir, "rsyslogd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("rsyslogd", "-n", "-f", r.conf, "-i", r.pid)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting rsyslogd: %v", err)
	}
	r.cmd = cmd
	// Ready when both stream inputs accept and a UDP probe has come
	// through (probes are left out of Lines).
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range []int{r.TCPPort, r.TLSPort} {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("rsyslogd did not listen on %d: %v\n%s", port, err, r.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	probe := fmt.Sprintf("probe-%d", time.Now().UnixNano())
	for {
		if c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", r.UDPPort)); err == nil {
			fmt.Fprintf(c, "<14>1 - - syslogtest - probe - %s", probe)
			c.Close()
		}
		time.Sleep(50 * time.Millisecond)
		if b, _ := os.ReadFile(r.out); strings.Contains(string(b), probe) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("rsyslogd did not take a UDP probe\n%s", r.Log())
		}
	}
}

// Kill stops rsyslogd with SIGKILL, as a crash would, and waits for it to
// be gone. Messages it had read but not written out are lost with it.
func (r *Rsyslog) Kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// Restart starts rsyslogd again on the same ports and file.
func (r *Rsyslog) Restart() { r.start() }

// Log returns rsyslogd's own messages.
func (r *Rsyslog) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "rsyslogd.log"))
	return string(b)
}

// Lines returns the messages written so far, probes left out.
func (r *Rsyslog) Lines() []Line {
	r.t.Helper()
	data, err := os.ReadFile(r.out)
	if err != nil {
		return nil
	}
	// Only complete lines: rsyslog may be half-way through writing the
	// last one.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var ls []Line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "\t", 11)
		if len(p) != 11 {
			r.t.Fatalf("rsyslog output line with %d fields: %q", len(p), sc.Text())
		}
		l := Line{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], strings.TrimPrefix(p[10], " ")}
		if l.MsgID == "probe" && l.AppName == "syslogtest" {
			continue
		}
		ls = append(ls, l)
	}
	return ls
}

// WaitLines waits until at least n messages have been written (or timeout)
// and returns them.
func (r *Rsyslog) WaitLines(n int, timeout time.Duration) []Line {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ls := r.Lines()
		if len(ls) >= n || time.Now().After(deadline) {
			return ls
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts makes a CA and a server certificate for localhost and
// 127.0.0.1 signed by it, writes ca.pem, server.pem and server-key.pem to
// dir and returns the CA file's path.
func writeCerts(t testing.TB, dir string) string {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "icmpids test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("server.pem", "CERTIFICATE", srvDER)
	write("server-key.pem", "EC PRIVATE KEY", keyDER)
	return write("ca.pem", "CERTIFICATE", caDER)
}
