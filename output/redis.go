package output

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
)

// RedisConfig configures the Redis output (output.redis), with the keys of
// Suricata's eve-log redis output.
type RedisConfig struct {
	// Server is the Redis host name or address, or the path of its unix
	// socket (a value holding a '/'); "" turns the output off.
	Server string `mapstructure:"server"`
	// Port is the TCP port (unused with a unix socket).
	Port int `mapstructure:"port"`
	// Mode is the command each event is written with: "rpush" (append to
	// the list Key: a BLPOP reader gets the oldest first), "list" or
	// "lpush" (prepend, Suricata's default: a BLPOP reader gets the
	// newest first), "channel" or "publish" (PUBLISH to the channel Key:
	// only subscribers connected at the time get it), "stream" or "xadd"
	// (XADD to the stream Key, field "eve").
	Mode string `mapstructure:"mode"`
	// Key is the list, channel or stream name.
	Key string `mapstructure:"key"`
	// StreamMaxLen caps a stream's length (XADD MAXLEN ~ N, approximate
	// trimming); 0 leaves it unbounded.
	StreamMaxLen int `mapstructure:"stream_maxlen"`
	// QueueSize is how many events wait while Redis is unreachable (live
	// mode: more are dropped and counted).
	QueueSize int `mapstructure:"queue_size"`
}

// DefaultRedisConfig returns the defaults: off, port 6379, rpush to
// "icmpids", streams capped at 100,000 entries, 10,000 queued events.
func DefaultRedisConfig() RedisConfig {
	return RedisConfig{Port: 6379, Mode: "rpush", Key: "icmpids", StreamMaxLen: 100000, QueueSize: 10000}
}

// Validate checks the settings; each error names its key.
func (c RedisConfig) Validate() error {
	var errs []error
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("output.redis.port: %d is out of range [1, 65535]", c.Port))
	}
	if _, err := redisCommand(c.Mode); err != nil {
		errs = append(errs, err)
	}
	if c.Key == "" || strings.ContainsAny(c.Key, "\r\n") {
		errs = append(errs, fmt.Errorf("output.redis.key: %q must be a non-empty name without line breaks", c.Key))
	}
	if c.StreamMaxLen < 0 {
		errs = append(errs, fmt.Errorf("output.redis.stream_maxlen: %d must not be negative (0: unbounded)", c.StreamMaxLen))
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("output.redis.queue_size: %d is out of range [1, 10000000]", c.QueueSize))
	}
	return errors.Join(errs...)
}

// redisCommand maps a mode to its Redis command.
func redisCommand(mode string) (string, error) {
	switch mode {
	case "rpush":
		return "RPUSH", nil
	case "list", "lpush":
		return "LPUSH", nil
	case "channel", "publish":
		return "PUBLISH", nil
	case "stream", "xadd":
		return "XADD", nil
	}
	return "", fmt.Errorf("output.redis.mode: %q is not one of rpush, list, lpush, channel, publish, stream, xadd", mode)
}

// RedisOptions are the run-time choices of a Redis sink that are not
// configuration.
type RedisOptions struct {
	// Block makes Emit wait for room in a full queue (a replay), at most
	// BlockTimeout while Redis takes nothing; without it (a live sensor)
	// an event that finds the queue full is dropped and counted.
	Block        bool
	BlockTimeout time.Duration
	// Log receives the sink's messages; nil discards them.
	Log *logrus.Entry
	// Stop, when done, ends every wait of a blocking Emit at once (the
	// event is dropped and counted). Nil never stops.
	Stop context.Context
}

// redisBatch is the most commands one pipelined write carries.
const redisBatch = 256

// redisTimeout bounds a dial, and one pipelined write with its replies.
const redisTimeout = 5 * time.Second

// redisReconnectMin and redisReconnectMax bound the backoff between
// connection attempts while Redis is unreachable.
const (
	redisReconnectMin = 100 * time.Millisecond
	redisReconnectMax = 2 * time.Second
)

// Redis is a detector.Sink that writes each event's EVE JSON line to Redis
// (RPUSH, LPUSH, PUBLISH or XADD, as RedisConfig.Mode says), over TCP or a
// unix socket, speaking RESP itself.
//
// Events are encoded when they are emitted and wait in a bounded queue;
// one goroutine sends them in order, pipelining up to redisBatch commands
// per write, and takes an event off the queue once Redis has answered its
// command. While Redis is unreachable the events wait; the sender
// reconnects with exponential backoff. Live mode never waits: an event
// that finds the queue full is dropped and counted (queue_full). A command
// Redis answers with an error (a key of the wrong type) is dropped and
// counted (delivery_failed). Delivery is at least once: a connection lost
// after Redis ran a command but before its reply arrived sends that
// command again on the next connection.
type Redis struct {
	cfg          RedisConfig
	network      string // "tcp" or "unix"
	addr         string
	cmd          string
	block        bool
	blockTimeout time.Duration
	log          *logrus.Entry
	meta         atomic.Pointer[Meta]

	q *sendQueue[[]byte]

	ctx   context.Context
	abort context.CancelFunc
	done  chan struct{}
	first atomic.Pointer[redisConn]
	cur   atomic.Pointer[redisConn]

	sent, dropped, undelivered, failed, rejected, reconnects atomic.Uint64
	connected                                                atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// NewRedis returns a sink for cfg and starts its sender. It fails on bad
// settings, never because Redis is unreachable (see Check).
func NewRedis(cfg RedisConfig, opts RedisOptions) (*Redis, error) {
	if cfg.Server == "" {
		return nil, errors.New("output.redis.server: empty")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cmd, _ := redisCommand(cfg.Mode)
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Redis{
		cfg:          cfg,
		network:      "tcp",
		addr:         net.JoinHostPort(cfg.Server, strconv.Itoa(cfg.Port)),
		cmd:          cmd,
		block:        opts.Block,
		blockTimeout: opts.BlockTimeout,
		ctx:          ctx,
		abort:        cancel,
		done:         make(chan struct{}),
	}
	if strings.Contains(cfg.Server, "/") {
		r.network, r.addr = "unix", cfg.Server
	}
	if r.blockTimeout <= 0 {
		r.blockTimeout = time.Minute
	}
	r.log = log.WithField("redis", r.Target())
	r.meta.Store(&Meta{})
	var stop <-chan struct{}
	if opts.Stop != nil {
		stop = opts.Stop.Done()
	}
	r.q = newSendQueue[[]byte](cfg.QueueSize, r.block, r.blockTimeout, stop)
	r.q.onStall = func() {
		r.log.WithField("waited", r.blockTimeout).Error("redis: Redis took nothing for the block timeout: dropping (and counting) events that find the queue full until it takes events again")
	}
	go r.run()
	return r, nil
}

// Target names the server: host:port or the socket's path.
func (r *Redis) Target() string { return r.addr }

// SetMeta sets what later events say of their sensor and input (see
// EVE.SetMeta).
func (r *Redis) SetMeta(m Meta) { r.meta.Store(&m) }

// Emit implements detector.Sink: it encodes ev and queues it (see Redis).
func (r *Redis) Emit(ev *detector.Event) {
	if !r.q.put(AppendEVE(nil, ev, r.meta.Load())) {
		r.dropped.Add(1)
	}
}

// Stats returns the sink's figures.
func (r *Redis) Stats() SinkStats {
	q := r.q.len()
	return SinkStats{
		Name: "redis", Queued: q, Capacity: r.q.capacity(),
		Sent: r.sent.Load(), Dropped: r.dropped.Load(), Undelivered: r.undelivered.Load(),
		Failed: r.failed.Load(), Rejected: r.rejected.Load(),
		Network: true, Connected: r.connected.Load(), Reconnects: r.reconnects.Load(),
	}
}

// Check connects and sends PING, so that a replay fails at once when
// Redis is down. The sender takes the connection over.
func (r *Redis) Check(ctx context.Context) error {
	c, err := r.dial(ctx)
	if err != nil {
		return err
	}
	c.c.SetDeadline(time.Now().Add(redisTimeout))
	if _, err := c.c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		c.c.Close()
		return fmt.Errorf("redis %s: PING: %w", r.addr, err)
	}
	reply, isErr, err := c.reply()
	if err != nil || isErr || reply != "PONG" {
		c.c.Close()
		if err == nil {
			err = fmt.Errorf("answered %q", reply)
		}
		return fmt.Errorf("redis %s: PING: %w", r.addr, err)
	}
	if old := r.first.Swap(c); old != nil {
		old.c.Close()
	}
	return nil
}

// Close stops accepting events and waits until the queue is delivered or
// ctx is done; then what is left is counted as undelivered and returned
// as an error. Later calls return the first call's result.
func (r *Redis) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		stalled := r.q.close()
		giveUp := ctx.Done()
		if stalled {
			c, cancel := context.WithCancel(context.Background())
			cancel()
			giveUp = c.Done()
		}
		select {
		case <-r.done:
		case <-giveUp:
			r.abort()
			if c := r.cur.Load(); c != nil {
				c.c.Close()
			}
			<-r.done
		}
		r.abort()
		if c := r.first.Swap(nil); c != nil {
			c.c.Close()
		}
		n := r.q.len()
		r.undelivered.Store(uint64(n))
		if n > 0 {
			r.log.WithField("undelivered", n).Error("redis: closed before every event was delivered")
			r.closeErr = fmt.Errorf("redis %s: %d events not delivered", r.addr, n)
		}
	})
	return r.closeErr
}

// peek waits for queued events and copies up to redisBatch of them,
// oldest first. It returns an empty batch when closing with nothing
// queued, or aborted.
func (r *Redis) peek(batch [][]byte) [][]byte { return r.q.next(r.ctx, batch, redisBatch) }

// pop takes k answered events off the queue.
func (r *Redis) pop(k int) { r.q.done(k) }

// run is the sender.
func (r *Redis) run() {
	defer close(r.done)
	var (
		c       *redisConn
		batch   [][]byte
		buf     []byte
		backoff = redisReconnectMin
		downAt  time.Time
		dialed  bool
	)
	hangUp := func() {
		if c != nil {
			c.c.Close()
			r.cur.Store(nil)
			c = nil
			r.connected.Store(false)
		}
	}
	defer hangUp()
	down := func(err error) {
		if downAt.IsZero() {
			downAt = time.Now()
			r.log.WithError(err).Warn("redis: unreachable: events wait in the queue, reconnecting with backoff")
		}
		r.sleep(backoff)
		backoff = min(2*backoff, redisReconnectMax)
	}
	for {
		batch = r.peek(batch[:0])
		if len(batch) == 0 {
			return
		}
		if c == nil {
			nc := r.first.Swap(nil)
			var err error
			if nc == nil {
				nc, err = r.dial(r.ctx)
			}
			if err != nil {
				if r.ctx.Err() != nil {
					return
				}
				down(err)
				continue
			}
			c = nc
			r.cur.Store(c)
			r.connected.Store(true)
			if dialed {
				r.reconnects.Add(1)
			}
			dialed = true
			if !downAt.IsZero() {
				r.log.WithField("down_for", time.Since(downAt).Round(time.Millisecond).String()).Info("redis: reachable again: sending the queued events")
				downAt = time.Time{}
			}
		}
		buf = buf[:0]
		for _, line := range batch {
			buf = r.command(buf, line)
		}
		k, err := c.exchange(buf, len(batch), func(isErr bool, reply string) {
			if isErr {
				r.rejected.Add(1)
				r.log.WithField("reply", reply).Warn("redis: command refused: event dropped")
			} else {
				r.sent.Add(1)
			}
		})
		r.pop(k)
		clear(batch)
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
		if err != nil {
			hangUp()
			if r.ctx.Err() != nil {
				return
			}
			down(err)
			continue
		}
		backoff = redisReconnectMin
	}
}

// command appends the RESP command that writes line.
func (r *Redis) command(b, line []byte) []byte {
	arg := func(b []byte, s []byte) []byte {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, '\r', '\n')
		b = append(b, s...)
		return append(b, '\r', '\n')
	}
	str := func(b []byte, s string) []byte {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, '\r', '\n')
		b = append(b, s...)
		return append(b, '\r', '\n')
	}
	if r.cmd == "XADD" {
		if r.cfg.StreamMaxLen > 0 {
			b = append(b, "*8\r\n"...)
			b = str(b, "XADD")
			b = str(b, r.cfg.Key)
			b = str(b, "MAXLEN")
			b = str(b, "~")
			b = str(b, strconv.Itoa(r.cfg.StreamMaxLen))
		} else {
			b = append(b, "*5\r\n"...)
			b = str(b, "XADD")
			b = str(b, r.cfg.Key)
		}
		b = str(b, "*")
		b = str(b, "eve")
		return arg(b, line)
	}
	b = append(b, "*3\r\n"...)
	b = str(b, r.cmd)
	b = str(b, r.cfg.Key)
	return arg(b, line)
}

// sleep waits d plus up to 20% jitter, or until the sink is aborted.
func (r *Redis) sleep(d time.Duration) {
	d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

func (r *Redis) dial(ctx context.Context) (*redisConn, error) {
	d := net.Dialer{Timeout: redisTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, r.network, r.addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, rd: bufio.NewReader(c)}, nil
}

// redisConn is one connection to Redis.
type redisConn struct {
	c  net.Conn
	rd *bufio.Reader
}

// exchange writes n pipelined commands and reads their replies, calling
// each for every reply in order. It returns how many replies it read.
func (c *redisConn) exchange(cmds []byte, n int, each func(isErr bool, reply string)) (int, error) {
	if err := c.c.SetDeadline(time.Now().Add(redisTimeout)); err != nil {
		return 0, err
	}
	if _, err := c.c.Write(cmds); err != nil {
		return 0, err
	}
	for i := 0; i < n; i++ {
		reply, isErr, err := c.reply()
		if err != nil {
			return i, err
		}
		each(isErr, reply)
	}
	return n, nil
}

// reply reads one RESP reply: a simple string, error, integer, bulk
// string or array (whose elements are read and dropped). It returns the
// reply's text (for strings, errors and integers) and whether it is an
// error.
func (c *redisConn) reply() (string, bool, error) {
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", false, errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], false, nil
	case '-':
		return line[1:], true, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", false, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", false, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.rd, b); err != nil {
			return "", false, err
		}
		return string(b[:n]), false, nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", false, fmt.Errorf("bad array length %q", line)
		}
		for i := 0; i < n; i++ {
			if _, _, err := c.reply(); err != nil {
				return "", false, err
			}
		}
		return "", false, nil
	}
	return "", false, fmt.Errorf("unknown reply %q", line)
}
