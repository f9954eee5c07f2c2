// Package redistest runs a real redis-server for tests: no persistence,
// listening on a unix socket in the test's directory and on a free
// loopback TCP port, killed by its PID and restarted on the same socket
// and port to simulate an outage.
//
// Start skips the test when redis-server is not installed, except when the
// environment has CI set: there it fails, so that a CI machine without
// Redis cannot pass by skipping.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Redis is a running (or killed) redis-server.
type Redis struct {
	t      testing.TB
	Socket string // the unix socket's path
	Port   int    // the loopback TCP port
	cmd    *exec.Cmd
}

// Start runs redis-server for the test and kills it at cleanup.
func Start(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have redis-server (.ci/run installs it): %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	dir, err := os.MkdirTemp("", "icmpids-redis")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &Redis{t: t, Socket: filepath.Join(dir, "redis.sock"), Port: port}
	r.Restart()
	t.Cleanup(r.Kill)
	return r
}

// Addr is the TCP address, 127.0.0.1:PORT.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// Restart starts redis-server (again, empty) and waits until it answers
// PING on the socket.
func (r *Redis) Restart() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--unixsocket", r.Socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
		"--dir", filepath.Dir(r.Socket), "--logfile", filepath.Join(filepath.Dir(r.Socket), "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := r.Do("PING"); err == nil && out == "PONG" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(filepath.Dir(r.Socket), "redis.log"))
	r.t.Fatalf("redis-server did not answer PING in 10 s:\n%s", log)
}

// Kill kills redis-server by its PID (SIGKILL: what is not persisted is
// lost, as in a crash) and waits for it to exit.
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
	r.cmd.Wait()
	r.cmd = nil
	os.Remove(r.Socket)
}

// Do runs one command on the socket and returns its reply as text: simple
// strings, integers and bulk strings as they are, an error reply as an
// error, arrays as their elements one a line (nested arrays flattened).
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("unix", r.Socket, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(c), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

// Subscribe subscribes to channel on the socket and returns a function
// that waits (at most d) for the next n messages.
func (r *Redis) Subscribe(channel string) func(n int, d time.Duration) []string {
	r.t.Helper()
	c, err := net.DialTimeout("unix", r.Socket, time.Second)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(channel), channel)
	rd := bufio.NewReader(c)
	var ack []string
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readReply(rd, &ack); err != nil {
		r.t.Fatalf("SUBSCRIBE: %v", err)
	}
	return func(n int, d time.Duration) []string {
		var msgs []string
		c.SetReadDeadline(time.Now().Add(d))
		for len(msgs) < n {
			var m []string
			if err := readReply(rd, &m); err != nil {
				break
			}
			if len(m) == 3 && m[0] == "message" {
				msgs = append(msgs, m[2])
			}
		}
		return msgs
	}
}

func readReply(rd *bufio.Reader, out *[]string) error {
	line, err := rd.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return err
		}
		*out = append(*out, string(b[:n]))
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return err
		}
		for range n {
			if err := readReply(rd, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown reply %q", line)
	}
	return nil
}
