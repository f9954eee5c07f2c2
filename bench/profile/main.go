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
	"time"

	"github.com/icmpids/icmpids/capture"
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/rules"
)

func main() {
	cpu := flag.String("cpu", "cpu.out", "CPU profile output")
	mem := flag.String("mem", "", "heap profile output (at the end of the replay)")
	flag.Parse()
	if err := run(*cpu, *mem, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

func run(cpuPath, memPath string, paths []string) error {
	rs, err := rules.Enabled(rules.DefaultConfig()) // every rule, as replay runs them
	if err != nil {
		return err
	}
	events := 0
	eng, err := detector.New(detector.DefaultConfig(), detector.SinkFunc(func(*detector.Event) { events++ }), rs...)
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
	fmt.Printf("frames=%d events=%d elapsed=%v pps=%.0f\n", n, events, el.Round(time.Millisecond), float64(n)/el.Seconds())
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
