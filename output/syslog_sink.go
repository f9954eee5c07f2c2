package output

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
)

// syslogBatch is the most events one write to a stream collector carries.
const syslogBatch = 256

// dropReportEvery is the least time between two log lines about events
// dropped from a full queue.
const dropReportEvery = 10 * time.Second

// SyslogOptions are the run-time choices of a Syslog sink that are not
// configuration.
type SyslogOptions struct {
	// Block makes Emit wait for room in a full queue (a replay loses
	// nothing; see SyslogConfig.BlockTimeout) instead of dropping the
	// event (a live sensor never stalls capture).
	Block bool
	// Version is the Device Version of CEF records.
	Version string
	// Log receives the sink's messages; nil discards them.
	Log *logrus.Entry
	// Stop, when done, ends every wait of a blocking Emit at once (the
	// alert is dropped and counted): a signal must not wait for a
	// collector. Nil never stops.
	Stop context.Context
}

// SinkStats are an output's delivery figures.
type SinkStats struct {
	Name string // e.g. "syslog", "eve_file"
	// Queued is the number of events waiting (the one being delivered
	// included); Capacity the queue's size (0 if unknown).
	Queued, Capacity int
	// Sent counts events delivered; Dropped those that found the queue
	// full (or closed); Undelivered those still queued when the sink was
	// closed and its deadline ran out; Failed those that could not be
	// encoded; Rejected those the far end refused (a Redis error reply, a
	// Kafka broker that gave up on a record).
	Sent, Dropped, Undelivered, Failed, Rejected uint64
	// Network is set for sinks with a connection (syslog): Connected
	// tells whether it holds one now; Reconnects counts connections made
	// after the first.
	Network    bool
	Connected  bool
	Reconnects uint64
}

// Syslog is a detector.Sink that sends events to a syslog collector over
// UDP (RFC 5426), TCP (RFC 6587, octet-counting framing) or TLS (RFC 5425),
// as RFC 5424 or RFC 3164 messages whose body is the EVE JSON alert or a
// CEF record.
//
// It has its own bounded queue and one goroutine that delivers from it, in
// order. Emit never blocks unless the sink was made with Block: an event
// that finds the queue full is dropped and counted. While the collector
// is unreachable, events wait in the queue; the sender reconnects with
// exponential backoff (with up to 20% jitter) and sends them when the
// collector is back.
//
// Delivery is at most once, never twice. An event leaves the queue once
// the kernel has accepted all of its frame; a write that fails part-way
// leaves the event (and those after it) queued, to be sent whole on the
// next connection, starting at a frame boundary: the collector sees the
// cut frame end with its connection and a complete copy on the next one.
// Before every write the sender checks whether the collector has closed
// the connection (a collector never sends syslog data back: end of stream
// or a reset means it is gone), so a collector that stopped or crashed
// between two batches costs nothing. What it cannot see is a collector
// that dies with frames still unread in its socket buffer: TCP syslog has
// no acknowledgements (RELP would), and those frames are lost. Over UDP
// nothing tells a datagram lost.
type Syslog struct {
	target SyslogTarget
	cfg    SyslogConfig
	block  bool
	fmt    *syslogFormatter
	log    *logrus.Entry

	tlsMu   sync.Mutex
	tlsConf *tls.Config

	// q is the queue; a blocking Emit's wait is cleared only when it
	// drains to half, so a collector that takes one alert per reconnect
	// still runs out BlockTimeout.
	q *sendQueue[*detector.Event]
	// troubleSince is when delivery last began to fail (a dial failed or
	// a write timed out; Unix ns, 0: no trouble). It is cleared only by
	// a connection that delivers for a whole write_timeout without
	// failing, or by an empty queue: a collector that takes a few alerts
	// on each new connection and then stalls stays in trouble, and a
	// blocking Emit waits at most block_timeout from its start.
	troubleSince atomic.Int64
	mu           sync.Mutex // lastDrop, lastRep
	lastDrop     uint64     // dropped count last reported
	lastRep      time.Time

	ctx    context.Context
	abort  context.CancelFunc // Close gave up: stop dialing, sleeping, writing
	done   chan struct{}      // the sender returned
	cur    atomic.Pointer[syslogConn]
	first  atomic.Pointer[syslogConn] // Check's connection, which the sender takes over
	redial atomic.Bool

	sent, dropped, undelivered, failed, reconnects atomic.Uint64
	connected                                      atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

// NewSyslog returns a sink sending to the collector at rawURL (see
// ParseSyslogURL) and starts its sender. It fails on bad settings or
// unreadable TLS files, never because the collector is unreachable: that
// is what the queue is for (see Check).
func NewSyslog(rawURL string, cfg SyslogConfig, opts SyslogOptions) (*Syslog, error) {
	target, err := ParseSyslogURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("output.syslog: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	f, err := newSyslogFormatter(cfg, opts.Version)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Syslog{
		target: target,
		cfg:    cfg,
		block:  opts.Block,
		fmt:    f,
		log:    log.WithField("syslog", target.String()),
		ctx:    ctx,
		abort:  cancel,
		done:   make(chan struct{}),
	}
	var stop <-chan struct{}
	if opts.Stop != nil {
		stop = opts.Stop.Done()
	}
	s.q = newSendQueue[*detector.Event](cfg.QueueSize, opts.Block, cfg.BlockTimeout, stop)
	s.q.trouble = s.troubleSince.Load
	s.q.recovered = func(queued, capacity int) bool {
		// Real progress: the collector takes alerts again. (Not while
		// in trouble: a new connection's kernel buffers take a queue's
		// worth of alerts from a collector that reads nothing.)
		return queued <= capacity/2 && s.troubleSince.Load() == 0
	}
	s.q.onStall = func() {
		s.log.WithField("waited", s.cfg.BlockTimeout).Error("syslog: the collector took nothing for syslog.block_timeout: dropping (and counting) alerts that find the queue full until it takes events again")
	}
	if target.Scheme == "tls" {
		if s.tlsConf, err = loadSyslogTLS(cfg.TLS, target.Host); err != nil {
			cancel()
			return nil, err
		}
	}
	go s.run()
	return s, nil
}

// SetMeta sets what later messages say of their sensor and input (see
// EVE.SetMeta).
func (s *Syslog) SetMeta(m Meta) { s.fmt.meta.Store(&m) }

// Target returns the collector's URL.
func (s *Syslog) Target() string { return s.target.String() }

// loadSyslogTLS reads the CA bundle and client certificate.
func loadSyslogTLS(c SyslogTLSConfig, host string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("syslog.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("syslog.tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		conf.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("syslog.tls.cert_file, syslog.tls.key_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// Emit implements detector.Sink. Without Block it never blocks: an event
// that finds the queue full is dropped and counted. With Block it waits
// for room, at most BlockTimeout while the collector takes nothing; then
// it drops and counts, as it does at once while that stall lasts.
func (s *Syslog) Emit(ev *detector.Event) {
	if !s.q.put(ev) {
		s.dropped.Add(1)
	}
}

// Reconnect makes the sender drop its connection and dial anew before the
// next event, reading the TLS files again (SIGHUP: certificate rotation,
// a collector that moved).
func (s *Syslog) Reconnect() { s.redial.Store(true) }

// Stats returns the sink's figures.
func (s *Syslog) Stats() SinkStats {
	q := s.q.len()
	return SinkStats{
		Name:        "syslog",
		Queued:      q,
		Capacity:    s.q.capacity(),
		Sent:        s.sent.Load(),
		Dropped:     s.dropped.Load(),
		Undelivered: s.undelivered.Load(),
		Failed:      s.failed.Load(),
		Network:     true,
		Connected:   s.connected.Load(),
		Reconnects:  s.reconnects.Load(),
	}
}

// Sent returns how many events were delivered.
func (s *Syslog) Sent() uint64 { return s.sent.Load() }

// Dropped returns how many events were dropped because the queue was full.
func (s *Syslog) Dropped() uint64 { return s.dropped.Load() }

// Check dials the collector once and hangs up, so that a replay can fail
// at once on a collector that is down or a TLS handshake that fails. UDP
// has nothing to check.
func (s *Syslog) Check(ctx context.Context) error {
	if s.target.Scheme == "udp" {
		return nil
	}
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	// The sender uses this connection: a collector that takes a single
	// connection (nc -l) gets every alert on it.
	if old := s.first.Swap(c); old != nil {
		old.close()
	}
	return nil
}

// Close stops accepting events and waits until the queue is delivered or
// ctx is done. If the deadline comes first it gives up: the connection is
// closed, what is still queued is counted as undelivered, logged, and
// returned as an error. Later calls return the first call's result.
func (s *Syslog) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		stalled := s.q.close()
		giveUp := ctx.Done()
		if stalled {
			// The collector took nothing for block_timeout: waiting out
			// the close deadline too would only delay the exit.
			c, cancel := context.WithCancelCause(context.Background())
			cancel(errors.New("the collector is stalled"))
			ctx, giveUp = c, c.Done()
		}
		select {
		case <-s.done:
		case <-giveUp:
			s.abort()
			if c := s.cur.Load(); c != nil {
				c.close() // ends a write in progress
			}
			<-s.done
		}
		s.abort()
		n := s.q.len()
		s.undelivered.Store(uint64(n))
		s.reportDrops(true)
		if n > 0 {
			s.log.WithField("undelivered", n).Error("syslog: closed before every alert was delivered")
			s.closeErr = fmt.Errorf("syslog %s: %d alerts not delivered: %w", s.target, n, context.Cause(ctx))
		}
	})
	return s.closeErr
}

// peek waits for queued events and copies up to max of them, oldest first,
// into batch without taking them off the queue. It returns an empty batch
// when the sink is closing and the queue is empty, or was aborted.
func (s *Syslog) peek(batch []*detector.Event, max int) []*detector.Event {
	return s.q.next(s.ctx, batch, max)
}

// pop takes k delivered (or undeliverable) events off the queue.
func (s *Syslog) pop(k int) { s.q.done(k) }

// run is the sender: it delivers queued events in order, (re)connecting as
// needed, until the sink is closed and drained, or aborted.
func (s *Syslog) run() {
	defer close(s.done)
	var (
		c        *syslogConn
		backoff  = s.cfg.ReconnectMin
		batch    []*detector.Event
		buf      []byte
		ends     []int
		ok       []bool
		downAt   time.Time
		dialed   bool
		lastErr  string
		attempts int
		// recent are the sizes of the last alerts written on c, newest
		// last: when c is given up, the bytes the collector never
		// acknowledged are matched to the alerts they held.
		recent []int
	)
	// drop closes c; abandon: c failed (or the sink gave up), so what it
	// holds unacknowledged is lost, not delivered.
	drop := func(abandon bool) {
		if c != nil {
			if n := c.unsent(); abandon && n > 0 {
				k, b := 0, 0
				for i := len(recent) - 1; i >= 0 && b < n; i-- {
					b += recent[i]
					k++
				}
				if k > 0 {
					s.sent.Add(^uint64(k - 1))
					s.dropped.Add(uint64(k))
					s.log.WithFields(logrus.Fields{"alerts": k, "bytes": n}).Warn("syslog: the collector never took the last alerts written: counted as dropped")
				}
			}
			recent = recent[:0]
			c.close()
			s.cur.Store(nil)
			c = nil
			s.connected.Store(false)
		}
	}
	defer func() { drop(s.ctx.Err() != nil) }()
	var healthySince time.Time // when the current connection began to deliver
	down := func(err error) {
		s.troubleSince.CompareAndSwap(0, time.Now().UnixNano())
		healthySince = time.Time{}
		if downAt.IsZero() {
			downAt = time.Now()
			s.log.WithError(err).Warn("syslog: collector unreachable: alerts wait in the queue, reconnecting with backoff")
		} else if msg := err.Error(); msg != lastErr {
			s.log.WithError(err).Debug("syslog: still unreachable")
		}
		lastErr = err.Error()
		attempts++
		s.reportDrops(false)
		s.sleep(backoff)
		backoff = min(2*backoff, s.cfg.ReconnectMax)
	}
	for {
		batch = s.peek(batch[:0], syslogBatch)
		if len(batch) == 0 {
			return
		}
		if c != nil {
			if c.dead() {
				drop(true)
			} else if s.redial.Swap(false) {
				drop(false)
			}
		}
		if c == nil {
			nc, err := s.firstOrDial()
			if err != nil {
				if s.ctx.Err() != nil {
					return
				}
				down(err)
				continue
			}
			c = nc
			s.cur.Store(c)
			s.connected.Store(true)
			if dialed {
				s.reconnects.Add(1)
			}
			dialed = true
			if !downAt.IsZero() {
				q := s.q.len()
				s.log.WithFields(logrus.Fields{"down_for": time.Since(downAt).Round(time.Millisecond).String(), "attempts": attempts, "queued": q}).Info("syslog: collector reachable again: sending the queued alerts")
				downAt, attempts, lastErr = time.Time{}, 0, ""
				s.reportDrops(true)
			}
		}
		buf, ends, ok = buf[:0], ends[:0], ok[:0]
		for _, ev := range batch {
			start := len(buf)
			var err error
			buf, err = s.frame(buf, ev)
			if err != nil {
				buf = buf[:start]
				s.log.WithError(err).Error("syslog: alert dropped")
			}
			ends = append(ends, len(buf))
			ok = append(ok, err == nil)
		}
		n, err := c.write(buf, ends, s.cfg.WriteTimeout)
		k, prev := 0, 0
		for k < len(ends) && ends[k] <= n {
			if ok[k] {
				s.sent.Add(1)
				if len(recent) == cap(recent) && len(recent) >= maxRecent {
					recent = append(recent[:0], recent[len(recent)/2:]...)
				}
				recent = append(recent, ends[k]-prev)
			} else {
				s.failed.Add(1)
			}
			prev = ends[k]
			k++
		}
		s.pop(k)
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
		clear(batch)
		if err != nil {
			drop(true)
			if s.ctx.Err() != nil {
				return
			}
			down(err)
			continue
		}
		backoff = s.cfg.ReconnectMin
		if healthySince.IsZero() {
			healthySince = time.Now()
		} else if s.troubleSince.Load() != 0 && time.Since(healthySince) >= s.cfg.WriteTimeout {
			s.troubleSince.Store(0) // a whole write_timeout without failing
			s.q.unstall()
		}
	}
}

// maxRecent bounds the alert sizes kept per connection: more than a
// bounded send buffer can hold.
const maxRecent = 4096

// firstOrDial takes over Check's connection if it is still alive, or
// dials.
func (s *Syslog) firstOrDial() (*syslogConn, error) {
	if c := s.first.Swap(nil); c != nil {
		if !c.dead() {
			return c, nil
		}
		c.close()
	}
	return s.dial(s.ctx)
}

// sleep waits d plus up to 20% jitter, or until the sink is aborted.
func (s *Syslog) sleep(d time.Duration) {
	d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// reportDrops logs how many events the full queue dropped since the last
// report: at most once per dropReportEvery unless force.
func (s *Syslog) reportDrops(force bool) {
	d := s.dropped.Load()
	s.mu.Lock()
	last, when := s.lastDrop, s.lastRep
	if d == last || (!force && time.Since(when) < dropReportEvery) {
		s.mu.Unlock()
		return
	}
	s.lastDrop, s.lastRep = d, time.Now()
	s.mu.Unlock()
	s.log.WithFields(logrus.Fields{"dropped": d - last, "dropped_total": d, "queue_size": s.q.capacity()}).
		Warn("syslog: queue full: alerts dropped")
}

// frame appends ev's message to buf with the transport's framing: none on
// UDP; on streams octet counting (RFC 6587 §3.4.1, RFC 5425 §4.3) or a
// trailing newline (non-transparent framing, RFC 6587 §3.4.2), as
// syslog.framing says.
func (s *Syslog) frame(buf []byte, ev *detector.Event) ([]byte, error) {
	if s.target.Scheme == "udp" {
		return s.fmt.message(buf, ev)
	}
	if !s.cfg.octetCounting() {
		start := len(buf)
		buf, err := s.fmt.message(buf, ev)
		if err != nil {
			return buf[:start], err
		}
		for i := start; i < len(buf); i++ { // a message never holds the delimiter
			if buf[i] == '\n' {
				buf[i] = ' '
			}
		}
		return append(buf, '\n'), nil
	}
	// Reserve room for the length, write the message, then move it into
	// place once its length is known.
	start := len(buf)
	buf = append(buf, "0000000000 "...)
	buf, err := s.fmt.message(buf, ev)
	if err != nil {
		return buf[:start], err
	}
	msgLen := len(buf) - start - 11
	var lenBuf [11]byte
	l := strconv.AppendInt(lenBuf[:0], int64(msgLen), 10)
	l = append(l, ' ')
	copy(buf[start+len(l):], buf[start+11:])
	copy(buf[start:], l)
	return buf[:start+len(l)+msgLen], nil
}

// dial connects to the collector; for TLS it reads the certificate files
// again, keeping the last good ones if they have become unreadable.
func (s *Syslog) dial(ctx context.Context) (*syslogConn, error) {
	timeout := min(s.cfg.WriteTimeout, 10*time.Second)
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	switch s.target.Scheme {
	case "udp":
		c, err := d.DialContext(ctx, "udp", s.target.Addr)
		if err != nil {
			return nil, err
		}
		return &syslogConn{c: c}, nil
	case "tcp":
		c, err := d.DialContext(ctx, "tcp", s.target.Addr)
		if err != nil {
			return nil, err
		}
		boundSendBuffer(c)
		return newStreamConn(c, c), nil
	}
	conf, err := loadSyslogTLS(s.cfg.TLS, s.target.Host)
	s.tlsMu.Lock()
	if err != nil {
		s.log.WithError(err).Warn("syslog: reading the TLS files again failed: keeping the ones read before")
		conf = s.tlsConf
	} else {
		s.tlsConf = conf
	}
	s.tlsMu.Unlock()
	raw, err := d.DialContext(ctx, "tcp", s.target.Addr)
	if err != nil {
		return nil, err
	}
	boundSendBuffer(raw)
	tc := tls.Client(raw, conf)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", s.target.Addr, err)
	}
	return newStreamConn(tc, raw), nil
}

// boundSendBuffer sets a TCP connection's send buffer to sendBuffer.
func boundSendBuffer(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(sendBuffer)
	}
}

// syslogConn is one connection to the collector.
type syslogConn struct {
	c      net.Conn
	raw    net.Conn // the TCP connection under c (streams only)
	stream bool
	gone   atomic.Bool // the reader saw the collector close the stream
	once   sync.Once
}

// newStreamConn starts a reader on c: a collector sends nothing on a
// syslog stream (TLS records aside, which tls.Conn handles), so Read
// returns only when the collector closes or resets the connection.
func newStreamConn(c, raw net.Conn) *syslogConn {
	sc := &syslogConn{c: c, raw: raw, stream: true}
	go func() {
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				sc.gone.Store(true)
				return
			}
		}
	}()
	return sc
}

// dead tells whether the collector has closed the connection: the reader
// saw it, or the socket has the end of stream (or an error) waiting now.
func (c *syslogConn) dead() bool {
	if !c.stream {
		return false
	}
	return c.gone.Load() || peekClosed(c.raw)
}

// write sends buf, whose frames end at the offsets in ends, and returns
// how many bytes the kernel accepted. UDP sends one datagram per frame.
func (c *syslogConn) write(buf []byte, ends []int, timeout time.Duration) (int, error) {
	if err := c.c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	if c.stream {
		return c.c.Write(buf)
	}
	start := 0
	for _, end := range ends {
		if end > start {
			if _, err := c.c.Write(buf[start:end]); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				// ECONNREFUSED is an earlier datagram's ICMP port
				// unreachable: UDP has no connection to lose, and this
				// one left (the collector will drop it, as UDP does).
				return start, err
			}
		}
		start = end
	}
	return start, nil
}

// sendBuffer bounds a stream connection's kernel send buffer: a collector
// that stops reading holds at most this much, and the alerts in it are
// known (SIOCOUTQ) and counted as dropped when the connection is given up.
const sendBuffer = 64 << 10

// unsent returns the bytes written to a stream connection that the peer
// has not acknowledged, or 0 when unknown.
func (c *syslogConn) unsent() int {
	if !c.stream {
		return 0
	}
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := -1
	rc.Control(func(fd uintptr) { n = unsentFD(fd) })
	return max(n, 0)
}

func (c *syslogConn) close() {
	c.once.Do(func() { c.c.Close() })
}

// peekClosed looks at the socket without reading: end of stream or an
// error (reset) means the peer is gone; no data or some data means it is
// not known to be.
func peekClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	if err := rc.Control(func(fd uintptr) { closed = peekFD(fd) }); err != nil {
		return true
	}
	return closed
}
