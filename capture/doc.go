// Package capture delivers raw frames with their timestamps and link types
// from capture files (pcap, pcapng, gzip-compressed) and, in live.go, from
// network interfaces through libpcap. It knows nothing of detection: the
// caller hands each Frame to the engine.
package capture
