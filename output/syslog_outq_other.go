//go:build !linux

package output

// unsentFD cannot ask for the send queue here: what was written counts as
// sent.
func unsentFD(uintptr) int { return -1 }
