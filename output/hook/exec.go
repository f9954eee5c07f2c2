package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

// ExecConfig configures output.exec: a command run once per event.
type ExecConfig struct {
	// Command is the argv of the command ([] turns the output off): no
	// shell is involved; give ["/bin/sh", "-c", "..."] for one.
	Command []string `mapstructure:"command"`
	// Phases are the phases that run it (start, update, end).
	Phases []string `mapstructure:"phases"`
	// Timeout is how long one run may take; then it is killed (its
	// whole process group) and counted as failed.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxRunning is how many runs may be under way at once; more events
	// wait in the queue.
	MaxRunning int `mapstructure:"max_running"`
	// QueueSize is how many events a live sensor queues while the runs
	// are busy (then the oldest are dropped and counted).
	QueueSize int `mapstructure:"queue_size"`
}

// DefaultExecConfig returns the defaults: off; start and end; 10 s; 4 at
// once; 1,000 queued.
func DefaultExecConfig() ExecConfig {
	return ExecConfig{Command: []string{}, Phases: []string{"start", "end"}, Timeout: 10 * time.Second, MaxRunning: 4, QueueSize: 1000}
}

// Validate checks the settings; each error names its key.
func (c ExecConfig) Validate() error {
	var errs []error
	if len(c.Command) > 0 && strings.TrimSpace(c.Command[0]) == "" {
		errs = append(errs, fmt.Errorf("output.exec.command: the first element (the program) is empty"))
	}
	if _, err := phaseSet(c.Phases); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout <= 0 || c.Timeout > time.Hour {
		errs = append(errs, fmt.Errorf("output.exec.timeout: %v is out of range (0, 1h]", c.Timeout))
	}
	if c.MaxRunning < 1 || c.MaxRunning > 1024 {
		errs = append(errs, fmt.Errorf("output.exec.max_running: %d is out of range [1, 1024]", c.MaxRunning))
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("output.exec.queue_size: %d is out of range [1, 10000000]", c.QueueSize))
	}
	return errors.Join(errs...)
}

// Program finds the command's program (in PATH when it holds no slash):
// what check and the sensor's start-up need to know exists.
func (c ExecConfig) Program() (string, error) {
	if len(c.Command) == 0 {
		return "", nil
	}
	p, err := exec.LookPath(c.Command[0])
	if err != nil {
		return "", fmt.Errorf("output.exec.command: %q: %w", c.Command[0], err)
	}
	return p, nil
}

func phaseSet(phases []string) ([3]bool, error) {
	var set [3]bool
	if len(phases) == 0 {
		return set, fmt.Errorf("output.exec.phases: empty (give some of start, update, end)")
	}
	for _, p := range phases {
		switch strings.TrimSpace(p) {
		case "start":
			set[detector.PhaseStart] = true
		case "update":
			set[detector.PhaseUpdate] = true
		case "end":
			set[detector.PhaseEnd] = true
		default:
			return set, fmt.Errorf("output.exec.phases: %q is not one of start, update, end", p)
		}
	}
	return set, nil
}

// stderrKept is how much of a failed run's standard error its log line
// quotes.
const stderrKept = 512

// execer runs the command for each event of the configured phases, with
// the EVE JSON object (and a newline) on its standard input and
// ICMPIDS_RULE, ICMPIDS_PHASE, ICMPIDS_TARGET, ICMPIDS_ATTACK_ID in its
// environment (added to the sensor's). Emit returns once the run has
// started; it waits while MaxRunning runs are under way.
type execer struct {
	cfg    ExecConfig
	prog   string
	phases [3]bool
	meta   atomic.Pointer[output.Meta]
	stop   <-chan struct{}
	ctx    context.Context // cancelled when Close gives up: kills the runs
	cancel context.CancelFunc
	slots  chan struct{}
	wg     sync.WaitGroup
	counts
}

// NewExec returns the exec output for cfg (valid; a Command set).
func NewExec(cfg ExecConfig, opts Options) (*Output, error) {
	prog, err := cfg.Program()
	if err != nil {
		return nil, err
	}
	phases, err := phaseSet(cfg.Phases)
	if err != nil {
		return nil, err
	}
	opts.Log = discardLog(opts.Log)
	ctx, cancel := context.WithCancel(context.Background())
	e := &execer{cfg: cfg, prog: prog, phases: phases, stop: stopChan(opts.Stop), ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, cfg.MaxRunning)}
	e.counts.log = opts.Log
	e.meta.Store(&output.Meta{})
	return newOutput("exec", e, opts), nil
}

func (e *execer) setMeta(m output.Meta) { e.meta.Store(&m) }
func (e *execer) counters() *counts     { return &e.counts }

// Emit starts the command for ev, once a run slot is free.
func (e *execer) Emit(ev *detector.Event) {
	if int(ev.Phase) >= len(e.phases) || !e.phases[ev.Phase] {
		return
	}
	meta := e.meta.Load()
	stdin := append(output.AppendEVE(nil, ev, meta), '\n')
	env := []string{
		"ICMPIDS_RULE=" + ev.Rule.Name,
		"ICMPIDS_PHASE=" + ev.Phase.String(),
		"ICMPIDS_TARGET=" + ev.Target.String(),
		"ICMPIDS_ATTACK_ID=" + fmt.Sprintf("%016x", output.AttackID(meta.Host, ev)),
	}
	select {
	case e.slots <- struct{}{}:
	case <-e.stop:
		e.dropped.Add(1)
		return
	case <-e.ctx.Done():
		e.dropped.Add(1)
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() { <-e.slots }()
		if err := e.run(stdin, env); err != nil {
			e.fail(err)
			return
		}
		e.ok()
	}()
}

// run runs the command once, killing its process group at the timeout (or
// when Close gives up, or on Stop).
func (e *execer) run(stdin []byte, env []string) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	if e.stop != nil {
		go func() {
			select {
			case <-e.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	cmd := exec.CommandContext(ctx, e.prog, e.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	killGroup(cmd)
	// A child that keeps the pipes open must not keep us waiting.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	what := strings.Join(e.cfg.Command, " ")
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("output.exec: %s: killed at its timeout (%v)", what, e.cfg.Timeout)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg != "" {
		msg = ": " + strconv.Quote(msg)
	}
	return fmt.Errorf("output.exec: %s: %w%s", what, err, msg)
}

// close waits for the runs under way, at most until ctx is done; then it
// kills them.
func (e *execer) close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
	}
	running := len(e.slots)
	e.cancel()
	<-done
	return fmt.Errorf("output.exec: %d runs still under way at shutdown were killed: %w", running, ctx.Err())
}

// limitedBuffer keeps the first stderrKept bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := stderrKept - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
