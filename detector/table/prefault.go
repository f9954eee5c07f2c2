package table

import (
	"os"
	"unsafe"
)

// Prefault writes the zero value into s (a new allocation) once per memory
// page and returns s, so that every page is mapped writable now, before
// the hot path reads it.
//
// Memory fresh from the kernel is mapped on first touch. When the first
// touch is a read — a lookup in an empty hash index or outstanding-request
// table — the kernel maps its shared zero page, and the first write must
// then replace it (a write-protect fault) and shoot the old mapping out of
// the TLB of every CPU running the process, an interrupt to each (in a
// virtual machine, an exit per interrupt). A two-worker replay of the
// generator's mix spent 9.6 % of its CPU samples in page faults, 4.6 % in
// those interrupts alone; with smurf's outstanding requests, icmp_sweep's
// and nd_spoof's cells prefaulted (detector.Warmer) and grown indexes
// prefaulted here, 6.5 % and 1.3-2.1 % (the admission filters still fault
// as they are used: prefaulting them too made the flood slower), and the
// replay is 3-6 % faster (the interrupts stopped the reading core too).
// Writing first costs one plain fault per page, and the page is resident
// from then on.
func Prefault[T any](s []T) []T {
	var zero T
	step := max(os.Getpagesize()/max(int(unsafe.Sizeof(zero)), 1), 1)
	for i := 0; i < len(s); i += step {
		s[i] = zero
	}
	if len(s) > 0 {
		s[len(s)-1] = zero // the last page, when the step jumps past it
	}
	return s
}
