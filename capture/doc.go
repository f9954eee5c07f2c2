// Package capture delivers raw frames with their timestamps and full 16-bit
// LINKTYPE_ values, from capture files (pcap with micro- or nanosecond
// timestamps in either byte order, pcapng with any number of interfaces and
// link types, either gzip-compressed) and from network interfaces through
// libpcap (live.go), with a default BPF filter that keeps ICMP, ICMPv6 and
// IP fragments. Reading a frame does not allocate in steady state. It knows
// nothing of detection: the caller hands each Frame to the engine.
//
// Errors are one line naming the file or interface and the cause, and wrap
// sentinels for errors.Is: ErrNotCapture, ErrTruncated, ErrMalformed for
// files; ErrNoSuchInterface, ErrPermission, ErrBadFilter for live capture;
// ErrTimeout when a live read times out with no packet.
package capture
