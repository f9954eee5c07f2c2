//go:build unix

package output

import "syscall"

// peekFD reports whether the socket fd has its end of stream or an error
// waiting, without consuming anything and without blocking.
func peekFD(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		return false // nothing waiting: alive as far as anyone can tell
	case err != nil:
		return true // ECONNRESET and the like
	}
	return n == 0 // 0 bytes without error: the peer closed its side
}
