// Command rulecost measures what each rule costs per packet: it loads
// capture files into memory, then replays them through one detection
// engine (default settings, as replay runs them) with every rule on, with
// every rule but one (for each rule), and with every rule off, round after
// round in interleaved order, and prints for each rule the median of what
// turning it off saves, in ns per packet.
//
// Leaving one rule out, rather than timing a rule alone, charges a rule
// only for its own work in the real configuration: alone it would pay for
// the address hashes the rules share and count the echo replies smurf's
// classification spares the others. In memory, without the file read and the
// process start, the figures are the engine's own and steadier than
// differences of whole replays.
//
//	go run ./bench/rulecost -runs 5 mix.pcap flood.pcap
//	go run ./bench/rulecost -runs 3 -max 100000 -cpu worst.pcap   (its first 100,000 frames, CPU time)
//
// With -measure N it times nothing: it replays the first N frames of the
// capture once through one engine, every rule on, with the garbage
// collector off, and prints each rule's Go type. Run twice under
// valgrind's callgrind with two values of N, the difference of the two
// runs' instruction counts is what the frames between them cost, in steady
// state — deterministic where timings on a shared machine are not — and
// the difference of the engine's calls into a rule is that rule's own work
// (bench/instr.sh does this for every capture of the worst-input suite).
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

func main() {
	runs := flag.Int("runs", 5, "rounds; each times every configuration once")
	limit := flag.Int("max", 0, "frames to load of each file (0: all)")
	measure := flag.Int("measure", -1, "replay the first N frames once, every rule on, for valgrind (see the package comment)")
	cpu := flag.Bool("cpu", false, "time by the replaying thread's CPU time instead of wall time (steadier on a busy machine: time spent descheduled is not counted)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: rulecost [-runs N] FILE...\n\nPer-rule cost, ns per packet, of each capture file (see the package comment).")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *runs < 1 || *measure >= 0 && flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *measure >= 0 {
		if err := measureOnce(os.Stdout, *measure, *limit, flag.Arg(0)); err != nil {
			fmt.Fprintln(os.Stderr, "rulecost:", err)
			os.Exit(1)
		}
		return
	}
	if *cpu {
		runtime.LockOSThread() // the replays run on this goroutine: its thread's CPU time is theirs
	}
	if err := run(os.Stdout, *runs, *limit, *cpu, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "rulecost:", err)
		os.Exit(1)
	}
}

// frames is a capture held in memory.
type frames struct {
	name string
	buf  []byte
	recs []frame
}

type frame struct {
	off, n  int
	wireLen int
	ts      time.Time
	link    detector.LinkType
}

// load reads the frames of path into memory, the first limit of them
// when limit > 0.
func load(path string, limit int) (*frames, error) {
	r, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fs := &frames{name: path}
	for limit <= 0 || len(fs.recs) < limit {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return fs, nil
		}
		if err != nil {
			return nil, err
		}
		fs.recs = append(fs.recs, frame{off: len(fs.buf), n: len(f.Data), wireLen: f.Length, ts: f.Timestamp, link: detector.LinkType(f.LinkType)})
		fs.buf = append(fs.buf, f.Data...)
	}
	return fs, nil
}

// config is a rule configuration to time: every rule on but those in off.
type config struct {
	name string
	off  []string
}

// replay times one pass of fs through a new engine running cfg's rules.
// wallClock and threadCPU read a clock for replay to time by: wall time,
// or the CPU time of the calling thread (getrusage RUSAGE_THREAD; the
// caller locks its goroutine to the thread).
func wallClock() time.Duration { return time.Duration(time.Now().UnixNano()) }

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return wallClock()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

func replay(fs *frames, cfg config, clock func() time.Duration) (time.Duration, error) {
	rc := rules.DefaultConfig()
	for _, n := range cfg.off {
		if err := rc.SetEnabled(n, false); err != nil {
			return 0, err
		}
	}
	rs, err := rules.Enabled(rc)
	if err != nil {
		return 0, err
	}
	eng, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), rs...)
	if err != nil {
		return 0, err
	}
	start := clock()
	for _, f := range fs.recs {
		eng.HandleFrame(f.link, fs.buf[f.off:f.off+f.n], f.ts, f.wireLen)
	}
	eng.Close(detector.EndInputEnd)
	return clock() - start, nil
}

func run(w io.Writer, runs, limit int, cpu bool, paths []string) error {
	clock, clockName := wallClock, "wall time"
	if cpu {
		clock, clockName = threadCPU, "the replaying thread's CPU time"
	}
	names := rules.Names()
	configs := []config{{name: "all"}, {name: "base", off: names}}
	for _, n := range names {
		configs = append(configs, config{name: n, off: []string{n}})
	}
	var caps []*frames
	for _, p := range paths {
		fs, err := load(p, limit)
		if err != nil {
			return err
		}
		if len(fs.recs) == 0 {
			return fmt.Errorf("%s: no frames", p)
		}
		caps = append(caps, fs)
	}
	// times[c][k]: capture c, configuration k, one duration per round.
	times := make([][][]time.Duration, len(caps))
	for c := range caps {
		times[c] = make([][]time.Duration, len(configs))
	}
	for r := 0; r < runs; r++ {
		for c, fs := range caps {
			for k, cfg := range configs {
				d, err := replay(fs, cfg, clock)
				if err != nil {
					return err
				}
				times[c][k] = append(times[c][k], d)
			}
		}
		fmt.Fprintf(os.Stderr, "# round %d/%d done\n", r+1, runs)
	}
	// cost: per packet, the median over rounds of the every-rule run
	// minus configuration k's run of the same round (k = 1, the base: what
	// all the rules cost together).
	cost := func(c, k int) float64 {
		var d []float64
		for r := range runs {
			d = append(d, float64(times[c][0][r]-times[c][k][r]))
		}
		slices.Sort(d)
		return d[len(d)/2] / float64(len(caps[c].recs))
	}
	perPacket := func(c, k int) float64 {
		d := slices.Clone(times[c][k])
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(len(caps[c].recs))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "rule\t")
	for _, fs := range caps {
		fmt.Fprintf(tw, "%s\t", shortName(fs.name))
	}
	fmt.Fprintln(tw)
	order := make([]int, 0, len(names))
	for k := 2; k < len(configs); k++ {
		order = append(order, k)
	}
	last := len(caps) - 1
	slices.SortStableFunc(order, func(a, b int) int { // costliest on the last capture first
		return cmp.Compare(cost(last, b), cost(last, a))
	})
	row := func(label string, f func(c int) float64) {
		fmt.Fprintf(tw, "%s\t", label)
		for c := range caps {
			fmt.Fprintf(tw, "%.1f\t", f(c))
		}
		fmt.Fprintln(tw)
	}
	for _, k := range order {
		row(configs[k].name, func(c int) float64 { return cost(c, k) })
	}
	row("sum of the above", func(c int) float64 {
		s := 0.0
		for _, k := range order {
			s += cost(c, k)
		}
		return s
	})
	row("all rules", func(c int) float64 { return cost(c, 1) })
	row("base (no rule)", func(c int) float64 { return perPacket(c, 1) })
	row("engine, all rules", func(c int) float64 { return perPacket(c, 0) })
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "# ns per packet; a rule's cost is what turning it off saves (median of %d rounds); base: decode and count with every rule off; in memory, one engine; %s\n", runs, clockName)
	return nil
}

// shortName is a file's base name without its extension.
func shortName(p string) string {
	b := filepath.Base(p)
	return strings.TrimSuffix(b, filepath.Ext(b))
}

// growStack uses about depth × 16 KiB of the goroutine's stack (which,
// the collector off, does not shrink again) and returns 0.
//
//go:noinline
func growStack(depth int) int {
	var b [16 << 10]byte
	if depth > 0 {
		return growStack(depth-1) + int(b[depth])
	}
	return int(b[0])
}

// measureOnce replays the first n frames of path (of its first limit
// when limit > 0) once through one engine with every rule on, and prints
// a line "rule NAME TYPE" for each rule, TYPE its Go type as valgrind
// names its methods (github.com/.../rules.(*RogueRA)).
func measureOnce(w io.Writer, n, limit int, path string) error {
	fs, err := load(path, limit)
	if err != nil {
		return err
	}
	if n > len(fs.recs) {
		return fmt.Errorf("%s: -measure %d: it has %d frames", path, n, len(fs.recs))
	}
	rs, err := rules.Enabled(rules.DefaultConfig())
	if err != nil {
		return err
	}
	eng, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) {}), rs...)
	if err != nil {
		return err
	}
	// No garbage collection during the replay (the hot path allocates
	// nothing, so none starts once this one is done): its work would
	// count for whichever run it fell in.
	debug.FreeOSMemory()
	debug.SetGCPercent(-1)
	// The stack grown up front: a goroutine stack that grows during the
	// replay (runtime.morestack runs the growing call again) can leave
	// callgrind attributing the rest of the run to a "recursion" of
	// that call, and the rules' shares come out wrong.
	growStack(16)
	for _, f := range fs.recs[:n] {
		eng.HandleFrame(f.link, fs.buf[f.off:f.off+f.n], f.ts, f.wireLen)
	}
	eng.Close(detector.EndInputEnd)
	for _, r := range rs {
		t := reflect.TypeOf(r)
		name := t.Name()
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
			name = "(*" + t.Name() + ")"
		}
		fmt.Fprintf(w, "rule %s %s.%s\n", r.Info().Name, t.PkgPath(), name)
	}
	return nil
}
