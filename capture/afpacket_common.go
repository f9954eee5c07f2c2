package capture

import "errors"

// AF_PACKET capture errors, for errors.Is (besides ErrNoSuchInterface,
// ErrPermission and ErrBadFilter, which OpenAFPacket returns as OpenLive
// does).
var (
	// ErrAFPacketUnsupported: AF_PACKET capture exists on Linux only.
	ErrAFPacketUnsupported = errors.New("AF_PACKET capture needs Linux (use libpcap capture)")
	// ErrUnsupportedLink: AF_PACKET capture does not handle the
	// interface's link type (it takes Ethernet, loopback and raw IP
	// interfaces; "any" mixes link types). libpcap capture does.
	ErrUnsupportedLink = errors.New("link type not supported by AF_PACKET capture (use libpcap capture)")
)

// AFPacketConfig configures an AF_PACKET capture (OpenAFPacket). The
// LiveConfig fields mean what they mean for libpcap, mapped onto a
// TPACKET_V3 ring:
//
//   - BufferSize is each socket's ring (0: 2 MiB, libpcap's default), cut
//     into blocks of about a 1024th of it (16 KiB to 4 MiB, room for a
//     snaplen frame). Per socket, because the kernel's flow hash puts a
//     flood from one source on one socket: that socket needs the whole
//     buffer.
//   - Immediate retires a block after 1 ms (a frame reaches the reader
//     within about a millisecond); otherwise after 64 ms or ReadTimeout,
//     whichever is shorter. A block is also handed over as soon as it is
//     full. A retired block is not reused before it is read, however few
//     frames it holds: at low rates a stalled reader has one block per
//     millisecond, hence many small blocks (32 MiB: 1024 of 32 KiB, about
//     a second of stall at any rate).
//   - ReadTimeout is the poll timeout; Next returns ErrTimeout after it.
//   - SnapLen is enforced by the filter program (the kernel keeps as many
//     bytes as the filter returns).
//   - Promiscuous is a PACKET_MR_PROMISC membership, undone on Close.
//   - BPF is compiled by libpcap for the interface's link type, as for
//     libpcap capture; the kernel runs it on each socket.
type AFPacketConfig struct {
	LiveConfig
	// Fanout is the number of sockets in one PACKET_FANOUT group (0 or 1:
	// one socket, no fanout). The kernel spreads packets over them by a
	// hash of the flow (symmetric in the addresses: a request and its
	// reply land on the same socket), rolling over to another socket
	// when one's ring is filling up; each socket is read by its own
	// goroutine (AFPacket.Sockets).
	Fanout int
}
