//go:build linux

package output

import "golang.org/x/sys/unix"

// unsentFD returns the bytes of a TCP socket's send queue the peer has not
// acknowledged (SIOCOUTQ), or -1 when unknown.
func unsentFD(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if err != nil {
		return -1
	}
	return n
}
