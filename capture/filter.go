package capture

import (
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
)

// Filter is a BPF expression applied to frames read from files: libpcap's
// offline filter (pcap_offline_filter), compiled once per link type as the
// frames' link types come. A Filter is not safe for concurrent use.
type Filter struct {
	expr  string
	progs map[uint16]*pcap.BPF // nil entry: does not compile for that link type
}

// NewFilter compiles expr for Ethernet to check it; a bad expression wraps
// ErrBadFilter and names the expression.
func NewFilter(expr string) (*Filter, error) {
	f := &Filter{expr: expr, progs: map[uint16]*pcap.BPF{}}
	if _, err := f.compile(1); err != nil { // LINKTYPE_ETHERNET
		return nil, err
	}
	return f, nil
}

// Expr is the filter's expression.
func (f *Filter) Expr() string { return f.expr }

// Match tells whether fr passes the filter. The first frame of a link type
// for which the expression does not compile (e.g. "ether host" on raw IP)
// gets the compile error; that frame and every later one of that link type
// do not match. Match does not allocate once the link type is compiled.
func (f *Filter) Match(fr *Frame) (bool, error) {
	prog, ok := f.progs[fr.LinkType]
	if !ok {
		var err error
		if prog, err = f.compile(fr.LinkType); err != nil {
			return false, err
		}
	}
	if prog == nil || len(fr.Data) == 0 {
		return false, nil
	}
	ci := gopacket.CaptureInfo{Timestamp: fr.Timestamp, CaptureLength: len(fr.Data), Length: max(fr.Length, len(fr.Data))}
	return prog.Matches(ci, fr.Data), nil
}

// compile compiles the expression for a pcap LINKTYPE_ value and caches
// the result (nil on failure).
func (f *Filter) compile(link uint16) (*pcap.BPF, error) {
	f.progs[link] = nil
	dlt, ok := linkTypeToDLT(link)
	if !ok {
		return nil, fmt.Errorf("%w %q: link type %d is not supported by the file filter", ErrBadFilter, f.expr, link)
	}
	prog, err := pcap.NewBPF(layers.LinkType(dlt), maxSnapLen, f.expr)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadFilter, f.expr, err)
	}
	f.progs[link] = prog
	return prog, nil
}

// linkTypeToDLT maps a pcap file's LINKTYPE_ value to the DLT_ value that
// libpcap's compiler takes, where they differ (libpcap's
// linktype_to_dlt). gopacket's link type is 8 bits wide: larger values
// cannot be compiled.
func linkTypeToDLT(link uint16) (uint8, bool) {
	switch link {
	case 101: // LINKTYPE_RAW
		return 12, true // DLT_RAW on Linux
	}
	if link > 255 {
		return 0, false
	}
	return uint8(link), true
}
