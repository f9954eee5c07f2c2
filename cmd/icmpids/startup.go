package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// startupGCBackstop is the longest the collector stays paused for start-up
// (pauseGC), whatever command runs.
const startupGCBackstop = 5 * time.Second

// pauseGC turns the garbage collector off for start-up and returns the
// function that turns it back on (once; later calls do nothing). The
// process calls it when its packet loop begins (replay, run), when
// correlate starts, when the command ends, and after startupGCBackstop in
// any case (a replay waiting for a FIFO's writer, an interface that is
// slow to come up).
//
// Why: start-up (configuration decoding, the rules' fixed tables) allocates
// some 20 MB, which at the default GOGC ran two collections before the
// first packet. Each scans the 5 MB of pointer-holding globals of
// gopacket's layers package (its EthernetType and PPP type metadata
// arrays), some 35 M instructions a cycle: together about two thirds of
// the instructions of a 1-packet replay. What start-up allocates is bounded
// by the configuration, so pausing the collector there bounds the heap
// all the same (GOMEMLIMIT still applies).
func pauseGC() (resume func()) {
	prev := debug.SetGCPercent(-1)
	var once sync.Once
	resume = func() { once.Do(func() { resumeGC(prev) }) }
	time.AfterFunc(startupGCBackstop, resume)
	return resume
}

// resumeGC sets the collector back to percent (GOGC's setting), its next
// goal as if it had just collected the start-up heap: that heap plus
// percent of it, not what the runtime's last marked heap gives (before any
// collection, the scannable globals, 5 MB, plus percent of them), which
// would start a collection at the first allocation after start-up. Once
// that collection has run, the goal follows percent as usual. With the
// collector off (GOGC=off) it only sets percent back.
func resumeGC(percent int) {
	next := nextGCPercent(percent)
	if next <= percent {
		debug.SetGCPercent(percent)
		return
	}
	// Set once, from the collector still off: a collection started
	// between two settings would run at the lower goal.
	sentinel := new([64]byte) // not tiny-allocated: its cleanup runs after the next cycle
	runtime.AddCleanup(sentinel, func(p int) { debug.SetGCPercent(p) }, percent)
	debug.SetGCPercent(next)
}

// nextGCPercent is the percentage whose goal is the heap now plus percent
// of it; percent itself when the collector is off.
func nextGCPercent(percent int) int {
	if percent <= 0 {
		return percent
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/globals:bytes"}, {Name: "/gc/scan/stack:bytes"}}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return percent // a runtime without these metrics: as configured
		}
	}
	heap, live, roots := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()+s[3].Value.Uint64()
	// The runtime's goal: the heap marked live by the last collection (0
	// before any) plus percent of it and of the roots, at least percent of
	// its 4 MB minimum heap.
	want := heap + heap/100*uint64(percent)
	if want <= live {
		return percent
	}
	return int(min((want-live)*100/max(live+roots, 4<<20), 1<<20))
}
