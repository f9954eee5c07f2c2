// Command profile replays capture files through a detection engine with
// every rule on (default settings, wired as cmd/icmpids wires them) and
// writes a CPU and a heap profile, for `go tool pprof`. It is how the
// per-packet costs behind bench/compare.sh's figures are found.
//
//	go run ./bench/profile -cpu cpu.out flood.pcap && go tool pprof -top cpu.out
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/shard"
	"github.com/icmpids/icmpids/rules"
)

func main() {
	cpu := flag.String("cpu", "cpu.out", "CPU profile output")
	mem := flag.String("mem", "", "heap profile output (at the end of the replay)")
	workers := flag.Int("workers", 1, "detection engines (detector/shard, as --workers)")
	flag.Parse()
	if err := run(*cpu, *mem, *workers, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

// pipeline is a single engine or a shard set.
type pipeline interface {
	HandleFrame(lt detector.LinkType, data []byte, ts time.Time, wireLen int)
	Close(reason string)
}

func run(cpuPath, memPath string, workers int, paths []string) error {
	var events atomic.Int64
	sink := detector.SinkFunc(func(*detector.Event) { events.Add(1) })
	build := func(_ int, sink detector.Sink) (*detector.Engine, error) {
		rs, err := rules.Enabled(rules.DefaultConfig()) // every rule, as replay runs them
		if err != nil {
			return nil, err
		}
		return detector.New(detector.DefaultConfig(), sink, rs...)
	}
	var eng pipeline
	var err error
	if workers == 1 {
		eng, err = build(0, sink)
	} else {
		eng, err = shard.New(shard.Config{Workers: workers}, sink, build)
	}
	if err != nil {
		return err
	}
	f, err := os.Create(cpuPath)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	start := time.Now()
	n := 0
	for _, p := range paths {
		r, err := capture.OpenFile(p)
		if err != nil {
			return err
		}
		for {
			fr, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			eng.HandleFrame(detector.LinkType(fr.LinkType), fr.Data, fr.Timestamp, fr.Length)
			n++
		}
		r.Close()
	}
	eng.Close(detector.EndInputEnd)
	el := time.Since(start)
	pprof.StopCPUProfile()
	fmt.Printf("frames=%d events=%d elapsed=%v pps=%.0f\n", n, events.Load(), el.Round(time.Millisecond), float64(n)/el.Seconds())
	if memPath != "" {
		runtime.GC()
		m, err := os.Create(memPath)
		if err != nil {
			return err
		}
		defer m.Close()
		return pprof.WriteHeapProfile(m)
	}
	return nil
}
