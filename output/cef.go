package output

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/icmpids/icmpids/detector"
)

// AppendCEF appends ev as an ArcSight Common Event Format record (CEF:0, no
// syslog header) to dst and returns the extended slice. version is the
// Device Version field.
//
// Escaping follows the CEF specification: in the header, backslash and
// pipe are escaped with a backslash; in extension values, backslash and
// equals sign are, and line breaks become \n and \r. Extension keys are
// fixed names from the spec's dictionary:
//
//	rt, start, end     event, attack start and last packet time (ms since the epoch)
//	src, dst           the triggering packet's IPv4 addresses (c6a2, c6a3 for IPv6)
//	proto, act, cat    EVE proto, action and category
//	cs1..cs4           rule, phase, target, top source (with csNLabel)
//	cn1..cn3           packets, bytes, distinct sources (with cnNLabel)
//	cfp1               packets per second, rate rules only (with cfp1Label)
//	reason             why an end event ended the attack
func AppendCEF(dst []byte, ev *detector.Event, version string, meta *Meta) []byte {
	if meta == nil {
		meta = &Meta{}
	}
	dst = append(dst, "CEF:0|icmpids|icmpids|"...)
	dst = cefHeader(dst, version)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(ev.Rule.SignatureID), 10)
	dst = append(dst, '|')
	dst = cefHeader(dst, ev.Rule.Signature)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(cefSeverity(ev.Rule.Severity)), 10)
	dst = append(dst, '|')

	e := cefExt{b: dst}
	e.int("rt", ev.Time.UnixMilli())
	e.addr("src", "c6a2", ev.Src)
	e.addr("dst", "c6a3", ev.Dst)
	e.str("proto", detector.ProtoName(ev.Proto))
	e.str("act", "allowed")
	e.str("cat", ev.Rule.Category)
	if meta.Host != "" {
		e.str("dvchost", meta.Host)
	}
	e.str("externalId", string(appendHex16(nil, AttackID(meta.Host, ev))))
	e.str("msg", fmt.Sprintf("%s %s on %s: %d packets from %d sources", ev.Rule.Name, ev.Phase, ev.Target, ev.Packets, ev.Sources))
	e.labeled("cs1", "rule", ev.Rule.Name)
	e.labeled("cs2", "phase", ev.Phase.String())
	if ev.Target.IsValid() {
		e.labeled("cs3", "target", ev.Target.String())
	}
	if ev.Source.IsValid() {
		e.labeled("cs4", "source", ev.Source.String())
	}
	e.labeled("cn1", "packets", strconv.FormatUint(ev.Packets, 10))
	e.labeled("cn2", "bytes", strconv.FormatUint(ev.Bytes, 10))
	e.labeled("cn3", "sources", strconv.FormatUint(ev.Sources, 10))
	if ev.Window > 0 && !ev.Rule.OneShot {
		e.labeled("cfp1", "pps", strconv.FormatFloat(ev.PPS, 'f', 1, 64))
	}
	if !ev.Started.IsZero() {
		e.int("start", ev.Started.UnixMilli())
	}
	if !ev.Rule.OneShot && !ev.LastSeen.IsZero() {
		e.int("end", ev.LastSeen.UnixMilli())
	}
	if ev.Phase == detector.PhaseEnd && ev.EndReason != "" {
		e.str("reason", ev.EndReason)
	}
	return e.b
}

// cefSeverity maps the EVE severity (1 high, 2 medium, 3 low) onto CEF's
// 0-10 scale (7-8 high, 4-6 medium, 0-3 low).
func cefSeverity(eve int) int {
	switch {
	case eve <= 1:
		return 8
	case eve == 2:
		return 5
	}
	return 3
}

// cefHeader appends s escaped for a CEF header field: \ and | get a
// backslash; line breaks, which a header may not hold, become spaces.
func cefHeader(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			dst = append(dst, '\\', c)
		case '\r', '\n':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// cefExt builds the extension: space-separated key=value pairs.
type cefExt struct {
	b     []byte
	first bool
}

func (e *cefExt) key(k string) {
	if e.first {
		e.b = append(e.b, ' ')
	}
	e.first = true
	e.b = append(e.b, k...)
	e.b = append(e.b, '=')
}

// str appends k=v, v escaped for an extension value.
func (e *cefExt) str(k, v string) {
	e.key(k)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '=':
			e.b = append(e.b, '\\', c)
		case '\n':
			e.b = append(e.b, '\\', 'n')
		case '\r':
			e.b = append(e.b, '\\', 'r')
		default:
			e.b = append(e.b, c)
		}
	}
}

func (e *cefExt) int(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

// labeled appends a custom field and its label: cs1=v cs1Label=label.
func (e *cefExt) labeled(k, label, v string) {
	e.str(k, v)
	e.str(k+"Label", label)
}

// addr appends an address under the IPv4 key, or an IPv6 one under the
// IPv6 custom key with its label (src → c6a2, dst → c6a3).
func (e *cefExt) addr(k4, k6 string, a netip.Addr) {
	switch {
	case !a.IsValid():
	case a.Unmap().Is4():
		e.str(k4, a.Unmap().String())
	default:
		// IPv6: in src/dst, which CEF 25 and the generic parsers (Elastic's
		// CEF processor, QRadar) take for either family, and in ArcSight's
		// IPv6 custom fields c6a2/c6a3, which older ArcSight connectors
		// need.
		e.str(k4, a.String())
		label := "Source IPv6 Address"
		if k4 == "dst" {
			label = "Destination IPv6 Address"
		}
		e.labeled(k6, label, a.String())
	}
}
