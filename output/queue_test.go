package output

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
)

// recSink records what it is given. With a gate, each Emit first reports on
// entered, then waits until the gate is closed.
type recSink struct {
	mu       sync.Mutex
	got      []*detector.Event
	gate     chan struct{}
	entered  chan struct{}
	flushes  int
	flushErr error
}

func newGatedSink() *recSink {
	return &recSink{gate: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (s *recSink) Emit(ev *detector.Event) {
	if s.gate != nil {
		s.entered <- struct{}{}
		<-s.gate
	}
	s.mu.Lock()
	s.got = append(s.got, ev)
	s.mu.Unlock()
}

func (s *recSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	return s.flushErr
}

func (s *recSink) events() []*detector.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*detector.Event(nil), s.got...)
}

func seqEvent(i int) *detector.Event { return &detector.Event{Packets: uint64(i)} }

func testLog() (*logrus.Entry, *bytes.Buffer) {
	var buf bytes.Buffer
	l := logrus.New()
	l.Out = &syncWriter{w: &buf}
	l.Formatter = &logrus.TextFormatter{DisableTimestamp: true}
	return l.WithField("component", "output"), &buf
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestQueueOverflowCountedExactly(t *testing.T) {
	sink := newGatedSink()
	q := NewQueue(sink, 4, nil)
	q.Emit(seqEvent(0))
	<-sink.entered // event 0 is being delivered; the queue is empty
	for i := 1; i <= 11; i++ {
		q.Emit(seqEvent(i)) // 1..4 fit; 5..11 each push out the oldest
	}
	if got := q.Dropped(); got != 7 {
		t.Errorf("Dropped() = %d, want 7", got)
	}
	if got := q.Pending(); got != 5 {
		t.Errorf("Pending() = %d, want 5", got)
	}
	close(sink.gate)
	if err := q.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := q.Sent(); got != 5 {
		t.Errorf("Sent() = %d, want 5", got)
	}
	got := sink.events()
	if len(got) != 5 {
		t.Fatalf("sink got %d events, want 5", len(got))
	}
	// Drop-oldest: the one in delivery, then the newest four, in order.
	for i, want := range []uint64{0, 8, 9, 10, 11} {
		if got[i].Packets != want {
			t.Errorf("event %d is #%d, want #%d (the oldest dropped, order kept)", i, got[i].Packets, want)
		}
	}
	if sink.flushes == 0 {
		t.Error("the sink was never flushed")
	}
	q.Emit(seqEvent(99))
	if got := q.Dropped(); got != 8 {
		t.Errorf("Dropped() after Close = %d, want 8 (emits after Close count as dropped)", got)
	}
	if err := q.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestQueueCloseDeadline(t *testing.T) {
	sink := newGatedSink()
	log, logBuf := testLog()
	q := NewQueue(sink, 10, log)
	for i := 0; i < 4; i++ {
		q.Emit(seqEvent(i))
	}
	<-sink.entered
	start := time.Now()
	err := q.Close(ctxTimeout(t, 50*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "4 alerts not delivered") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want 4 alerts not delivered and a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v despite its deadline", d)
	}
	if l := logBuf.String(); !strings.Contains(l, "undelivered=4") || !strings.Contains(l, "component=output") {
		t.Errorf("log line lacks the count or the component: %q", l)
	}
	if err2 := q.Close(context.Background()); err2 != err {
		t.Errorf("second Close = %v, want the first result %v", err2, err)
	}
	// Let the stuck delivery return: the queue delivers nothing more.
	close(sink.gate)
	<-q.done
	if n := len(sink.events()); n != 1 {
		t.Errorf("sink got %d events after Close gave up, want only the one in flight", n)
	}
}

func TestQueueConcurrentProducers(t *testing.T) {
	const producers, each = 8, 2000
	sink := &recSink{}
	q := NewQueue(sink, 64, nil)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				q.Emit(&detector.Event{Packets: uint64(i), Bytes: uint64(p)})
			}
		})
	}
	wg.Wait()
	if err := q.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := sink.events()
	if q.Sent()+q.Dropped() != producers*each || uint64(len(got)) != q.Sent() {
		t.Errorf("sent %d + dropped %d != %d emitted, or sink got %d", q.Sent(), q.Dropped(), producers*each, len(got))
	}
	last := make(map[uint64]int64)
	for _, ev := range got {
		prev, ok := last[ev.Bytes]
		if ok && int64(ev.Packets) <= prev {
			t.Fatalf("producer %d: #%d after #%d: order not preserved", ev.Bytes, ev.Packets, prev)
		}
		last[ev.Bytes] = int64(ev.Packets)
	}
}

func TestQueueFlushErrorLoggedOnce(t *testing.T) {
	sink := &recSink{flushErr: errors.New("disk full")}
	log, logBuf := testLog()
	q := NewQueue(sink, 8, log)
	for i := range 5 {
		q.Emit(seqEvent(i))
		for q.Sent() != uint64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	if err := q.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logBuf.String(), "flushing alerts failed"); n != 1 {
		t.Errorf("flush failure logged %d times, want once:\n%s", n, logBuf.String())
	}
}

// TestQueueFlushesEVEFileWhenIdle: an alert behind a queue reaches the file
// without Close, as soon as the queue runs empty.
func TestQueueFlushesEVEFileWhenIdle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "eve.json")
	f, err := OpenEVEFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q := NewQueue(f, 16, nil)
	q.Emit(testEvents()[0].ev)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(p)
		if len(b) > 0 {
			validateLines(t, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the alert never reached the file")
		}
		time.Sleep(time.Millisecond)
	}
	if err := q.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestMulti(t *testing.T) {
	a, b := &recSink{}, &recSink{}
	m := Multi{a, b}
	ev := seqEvent(1)
	m.Emit(ev)
	if ga, gb := a.events(), b.events(); len(ga) != 1 || len(gb) != 1 || ga[0] != ev || gb[0] != ev {
		t.Errorf("fan-out: a got %v, b got %v", ga, gb)
	}
	b.flushErr = errors.New("b broken")
	if err := m.Flush(); err == nil || a.flushes != 1 || b.flushes != 1 {
		t.Errorf("Flush = %v (a %d, b %d flushes), want b's error and one flush each", err, a.flushes, b.flushes)
	}

	// Close closes every queue at once under one deadline.
	s1, s2 := newGatedSink(), newGatedSink()
	q1, q2 := NewQueue(s1, 4, nil), NewQueue(s2, 4, nil)
	mq := Multi{q1, q2, &recSink{}}
	mq.Emit(seqEvent(1))
	mq.Emit(seqEvent(2))
	<-s1.entered
	<-s2.entered
	start := time.Now()
	err := mq.Close(ctxTimeout(t, 100*time.Millisecond))
	if err == nil || strings.Count(err.Error(), "2 alerts not delivered") != 2 {
		t.Errorf("Close = %v, want both queues to report 2 undelivered", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v: queues closed one after the other?", d)
	}
	close(s1.gate)
	close(s2.gate)
}

// TestQueueCloseExpiredContextEmpty: closing a queue that has delivered
// everything is no failure, even with a context that has already expired.
func TestQueueCloseExpiredContextEmpty(t *testing.T) {
	for i := 0; i < 50; i++ {
		q := NewQueue(detector.SinkFunc(func(*detector.Event) {}), 4, nil)
		q.Emit(&detector.Event{})
		for q.Pending() > 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := q.Close(ctx); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
}
