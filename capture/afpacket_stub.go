//go:build !linux

package capture

import "fmt"

// AFPacket is an AF_PACKET capture; it exists on Linux only.
type AFPacket struct{}

// AFPacketSocket is one socket of an AF_PACKET capture.
type AFPacketSocket struct{}

// OpenAFPacket fails with ErrAFPacketUnsupported outside Linux.
func OpenAFPacket(cfg AFPacketConfig) (*AFPacket, error) {
	return nil, fmt.Errorf("interface %q: %w", cfg.Interface, ErrAFPacketUnsupported)
}

// Sockets returns nothing outside Linux.
func (a *AFPacket) Sockets() []*AFPacketSocket { return nil }

// Next fails outside Linux.
func (a *AFPacket) Next() (Frame, error) { return Frame{}, ErrAFPacketUnsupported }

// Stats fails outside Linux.
func (a *AFPacket) Stats() (Stats, error) { return Stats{}, ErrAFPacketUnsupported }

// Close does nothing outside Linux.
func (a *AFPacket) Close() {}

// Interface is "" outside Linux.
func (a *AFPacket) Interface() string { return "" }

// LinkType is 0 outside Linux.
func (a *AFPacket) LinkType() uint16 { return 0 }

// Filter is "" outside Linux.
func (a *AFPacket) Filter() string { return "" }

// Next fails outside Linux.
func (s *AFPacketSocket) Next() (Frame, error) { return Frame{}, ErrAFPacketUnsupported }
