//go:build linux

package table

import (
	"os"
	"runtime"
	"syscall"
	"testing"
)

// minorFaults is this thread's count of minor page faults.
func minorFaults(t *testing.T) int64 {
	t.Helper()
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// readThenWrite reads, then writes, one word of every page of s, as a
// lookup and then an insert would, and returns the page faults it took.
func readThenWrite(t *testing.T, s []uint64) int64 {
	step := os.Getpagesize() / 8
	before := minorFaults(t)
	var sum uint64
	for i := 0; i < len(s); i += step {
		sum += s[i]
	}
	for i := 0; i < len(s); i += step {
		s[i] = sum + 1
	}
	return minorFaults(t) - before
}

// TestPrefaultLeavesNoFaultsToTheHotPath: on 8 MiB fresh from the kernel,
// a read then a write of every page faults at least once a page (twice:
// the zero page, then its replacement); after Prefault, hardly ever.
func TestPrefaultLeavesNoFaultsToTheHotPath(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const words = 1 << 20
	pages := int64(words * 8 / os.Getpagesize())
	if n := readThenWrite(t, make([]uint64, words)); n < pages {
		t.Skipf("fresh memory took %d faults over %d pages: this allocator hands out touched memory, nothing to compare", n, pages)
	}
	n := readThenWrite(t, Prefault(make([]uint64, words)))
	t.Logf("faults %d pages %d", n, pages)
	if n > pages/64 {
		t.Fatalf("after Prefault: %d page faults over %d pages, want next to none", n, pages)
	}
}

// TestPrefaultKeepsZeroes: for element sizes that do and do not divide a
// page, and lengths from 0 to ones that end inside a page, Prefault stays
// inside the slice (it panicked on an empty one when it wrote the last
// element unguarded) and every element still reads as the zero value.
func TestPrefaultKeepsZeroes(t *testing.T) {
	type odd struct {
		a uint64
		b [3]byte
	}
	for _, n := range []int{0, 1, 511, 4097, 100003} {
		for i, v := range Prefault(make([]odd, n)) {
			if v != (odd{}) {
				t.Fatalf("len %d: element %d = %+v", n, i, v)
			}
		}
		for i, v := range Prefault(make([]uint64, n)) {
			if v != 0 {
				t.Fatalf("len %d: word %d = %d", n, i, v)
			}
		}
	}
}
