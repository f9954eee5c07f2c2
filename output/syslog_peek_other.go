//go:build !unix

package output

// peekFD cannot look at a socket here; the connection's reader still
// notices a collector that closed it.
func peekFD(uintptr) bool { return false }
