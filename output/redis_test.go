package output

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/icmpids/icmpids/output/redistest"
)

func TestRedisConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(*RedisConfig)
	}{
		{"default", "", func(*RedisConfig) {}},
		{"every mode", "", func(c *RedisConfig) { c.Mode = "xadd"; c.StreamMaxLen = 0 }},
		{"bad mode", "output.redis.mode: \"queue\"", func(c *RedisConfig) { c.Mode = "queue" }},
		{"port", "output.redis.port: 0", func(c *RedisConfig) { c.Port = 0 }},
		{"key", "output.redis.key: \"\"", func(c *RedisConfig) { c.Key = "" }},
		{"key newline", "output.redis.key", func(c *RedisConfig) { c.Key = "a\r\nFLUSHALL" }},
		{"maxlen", "output.redis.stream_maxlen: -1", func(c *RedisConfig) { c.StreamMaxLen = -1 }},
		{"queue", "output.redis.queue_size: 0", func(c *RedisConfig) { c.QueueSize = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultRedisConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func closeRedis(t *testing.T, s *Redis) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// redisContent reads back what a list or stream key holds, oldest write
// first for rpush and xadd, as LRANGE and XRANGE give it.
func redisContent(t *testing.T, r *redistest.Redis, mode, key string) []string {
	t.Helper()
	var out string
	var err error
	switch mode {
	case "stream", "xadd":
		out, err = r.Do("XRANGE", key, "-", "+")
	default:
		out, err = r.Do("LRANGE", key, "0", "-1")
	}
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	if mode == "stream" || mode == "xadd" {
		// id, "eve", line for each entry
		var vals []string
		for i := 0; i+2 < len(lines); i += 3 {
			if lines[i+1] != "eve" {
				t.Fatalf("stream entry field %q, want eve", lines[i+1])
			}
			vals = append(vals, lines[i+2])
		}
		return vals
	}
	return lines
}

// TestRedisModes: every mode's content is the EVE file's lines, over the
// unix socket and over TCP; LPUSH reads back newest first.
func TestRedisModes(t *testing.T) {
	r := redistest.Start(t)
	var want []string
	for _, tc := range testEvents() {
		want = append(want, strings.TrimSuffix(string(encodeEVE(t, tc.ev)), "\n"))
	}
	for _, tc := range []struct{ mode, via string }{
		{"rpush", "unix"}, {"rpush", "tcp"}, {"list", "unix"}, {"lpush", "tcp"},
		{"stream", "unix"}, {"xadd", "tcp"}, {"channel", "unix"}, {"publish", "tcp"},
	} {
		t.Run(tc.mode+"_"+tc.via, func(t *testing.T) {
			cfg := DefaultRedisConfig()
			cfg.Mode, cfg.Key = tc.mode, "icmpids_"+tc.mode+"_"+tc.via
			cfg.Server = r.Socket
			if tc.via == "tcp" {
				cfg.Server, cfg.Port = "127.0.0.1", r.Port
			}
			var recv func(int, time.Duration) []string
			if tc.mode == "channel" || tc.mode == "publish" {
				recv = r.Subscribe(cfg.Key)
			}
			s, err := NewRedis(cfg, RedisOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ec := range testEvents() {
				s.Emit(ec.ev)
			}
			closeRedis(t, s)
			var got []string
			if recv != nil {
				got = recv(len(want), 5*time.Second)
			} else {
				got = redisContent(t, r, tc.mode, cfg.Key)
			}
			exp := want
			if tc.mode == "list" || tc.mode == "lpush" {
				exp = nil
				for i := len(want) - 1; i >= 0; i-- {
					exp = append(exp, want[i])
				}
			}
			if strings.Join(got, "\n") != strings.Join(exp, "\n") {
				t.Fatalf("redis holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
			for _, l := range got {
				if err := validateEVE(t, []byte(l)); err != nil {
					t.Error(err)
				}
			}
			if st := s.Stats(); st.Sent != uint64(len(want)) || st.Dropped+st.Rejected+st.Undelivered != 0 || st.Name != "redis" {
				t.Errorf("stats %+v, want %d sent, none lost", st, len(want))
			}
		})
	}
}

// TestRedisStreamMaxLen: stream_maxlen trims the stream (approximately,
// as XADD MAXLEN ~ does: whole macro nodes of 100 entries).
func TestRedisStreamMaxLen(t *testing.T) {
	r := redistest.Start(t)
	cfg := DefaultRedisConfig()
	cfg.Server, cfg.Mode, cfg.StreamMaxLen = r.Socket, "xadd", 100
	s, err := NewRedis(cfg, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		s.Emit(syslogEvent(i + 1))
	}
	closeRedis(t, s)
	n, err := r.Do("XLEN", cfg.Key)
	if err != nil {
		t.Fatal(err)
	}
	if n == "1000" || n == "0" {
		t.Errorf("XLEN = %s after 1000 events with stream_maxlen 100, want it trimmed", n)
	}
}

// TestRedisOutage: Redis killed by its PID and restarted: the events queued
// meanwhile arrive in order, without duplicates; the overflow is counted.
func TestRedisOutage(t *testing.T) {
	r := redistest.Start(t)
	cfg := DefaultRedisConfig()
	cfg.Server, cfg.QueueSize = r.Socket, 20
	l, logw := syslogTestLog()
	s, err := NewRedis(cfg, RedisOptions{Log: l})
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	emit := func(n int) {
		for range n {
			seq++
			s.Emit(syslogEvent(seq))
		}
	}
	waitQueue := func(what string) {
		deadline := time.Now().Add(10 * time.Second)
		for s.Stats().Queued > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if st := s.Stats(); st.Queued > 0 {
			t.Fatalf("%s: %+v, queue not drained", what, st)
		}
	}
	emit(10)
	waitQueue("before the outage")
	r.Kill()
	emit(50) // 20 fit in the queue, 30 overflow
	time.Sleep(150 * time.Millisecond)
	if st := s.Stats(); st.Dropped != 30 || st.Queued != 20 || st.Connected {
		t.Fatalf("during the outage: %+v, want 30 dropped, 20 queued, not connected", st)
	}
	r.Restart() // empty: the first 10 died with it
	waitQueue("after the restart")
	if st := s.Stats(); !st.Connected {
		t.Errorf("after the restart: %+v, not connected", st)
	}
	emit(5)
	closeRedis(t, s)
	var got []int
	for _, line := range redisContent(t, r, "rpush", cfg.Key) {
		got = append(got, bodySeq(t, line))
	}
	var want []int
	for i := 11; i <= 30; i++ {
		want = append(want, i)
	}
	for i := 61; i <= 65; i++ {
		want = append(want, i)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("redis holds %v\nwant        %v", got, want)
	}
	if st := s.Stats(); st.Sent != 35 || st.Dropped != 30 || st.Reconnects != 1 {
		t.Errorf("stats %+v, want 35 sent, 30 dropped, 1 reconnect", st)
	}
	if !strings.Contains(logw.String(), "unreachable") || !strings.Contains(logw.String(), "reachable again") {
		t.Errorf("the outage is not logged:\n%s", logw)
	}
}

// TestRedisRejected: a command Redis refuses (the key holds a string) is
// counted as rejected, and the events after it still go.
func TestRedisRejected(t *testing.T) {
	r := redistest.Start(t)
	if _, err := r.Do("SET", "icmpids", "not a list"); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultRedisConfig()
	cfg.Server = r.Socket
	s, err := NewRedis(cfg, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.Emit(syslogEvent(i + 1))
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Rejected < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := r.Do("DEL", "icmpids"); err != nil {
		t.Fatal(err)
	}
	s.Emit(syslogEvent(4))
	closeRedis(t, s)
	if st := s.Stats(); st.Rejected != 3 || st.Sent != 1 {
		t.Errorf("stats %+v, want 3 rejected, 1 sent", st)
	}
	if got := redisContent(t, r, "rpush", "icmpids"); len(got) != 1 || bodySeq(t, got[0]) != 4 {
		t.Errorf("redis holds %q, want event 4 alone", got)
	}
}

// TestRedisBlocking: a replay's sink fails Check at once when Redis is
// down, waits for room in a full queue while Redis is away, and stops
// waiting on a signal.
func TestRedisBlocking(t *testing.T) {
	r := redistest.Start(t)
	r.Kill()
	cfg := DefaultRedisConfig()
	cfg.Server, cfg.QueueSize = r.Socket, 2
	stop, cancel := context.WithCancel(context.Background())
	s, err := NewRedis(cfg, RedisOptions{Block: true, BlockTimeout: time.Minute, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	ctx, ccancel := context.WithTimeout(context.Background(), time.Second)
	defer ccancel()
	if err := s.Check(ctx); err == nil {
		t.Error("Check passed with Redis down")
	}
	s.Emit(syslogEvent(1))
	s.Emit(syslogEvent(2))
	done := make(chan struct{})
	go func() {
		s.Emit(syslogEvent(3)) // waits: the queue is full
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a blocking Emit returned with the queue full and Redis down")
	case <-time.After(200 * time.Millisecond):
	}
	r.Restart()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit still waits after Redis came back")
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Sent < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r.Kill()
	s.Emit(syslogEvent(4))
	s.Emit(syslogEvent(5))
	blocked := make(chan struct{})
	go func() {
		s.Emit(syslogEvent(6)) // waits until the signal
		close(blocked)
	}()
	time.Sleep(100 * time.Millisecond)
	cancel() // the signal
	select {
	case <-blocked:
	case <-time.After(time.Second):
		t.Fatal("a blocking Emit still waits after the signal")
	}
	ctxc, c2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer c2()
	if err := s.Close(ctxc); err == nil || !strings.Contains(err.Error(), "2 events not delivered") {
		t.Errorf("Close: %v, want 2 events not delivered", err)
	}
	if st := s.Stats(); st.Sent != 3 || st.Dropped != 1 || st.Undelivered != 2 {
		t.Errorf("stats %+v, want 3 sent, 1 dropped, 2 undelivered", st)
	}
}
