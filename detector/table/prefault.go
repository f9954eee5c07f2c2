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
// touch is a read — a lookup in an empty admission filter or hash index —
// the kernel maps its shared zero page, and the first write must then
// replace it (a write-protect fault) and shoot the old mapping out of the
// TLB of every CPU running the process, an interrupt to each (in a virtual
// machine, an exit per interrupt). A two-worker replay of the generator's
// mix, which fills smurf's outstanding requests, the admission filters and
// growing table indexes, spent 9.6 % of its CPU samples in page faults,
// 4.6 % in those interrupts alone; prefaulted, 4.7 % and 0.2 %, and the
// replay is 4-6 % faster (the interrupts stopped the reading core too).
// Writing first costs one plain fault per page, and the page is resident
// from then on (as it would be by the end of any busy replay).
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
