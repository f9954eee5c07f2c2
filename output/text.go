package output

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/icmpids/icmpids/detector"
)

// textTimeLayout is the text line's timestamp: UTC, milliseconds, "Z".
const textTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Text writes one readable line per attack event, for a person at a
// terminal or a journal:
//
//	2026-11-27T10:00:03.000Z ALERT icmp_flood start target=10.0.0.5 src=198.51.100.7 icmp=8/0 sources=1 pps=5000 bps=40.0M threshold=1000 packets=15000 bytes=1260000
//	2026-11-27T10:00:23.000Z ALERT icmp_flood end target=10.0.0.5 reason=quiet duration=10s packets=50000 bytes=4200000 peak_pps=5000 peak_bps=40.0M sources=~1200 top=198.51.100.7(3000),...
//
// Start and update lines give the triggering packet and the current rate;
// end lines the attack's totals. The rule's own context follows as sorted
// key=value pairs. Times are the events' packet times, never the wall
// clock. Text logs through its own logrus.Logger; it is safe for
// concurrent use.
type Text struct {
	mu  sync.Mutex
	log *logrus.Logger
	b   []byte
}

// NewText returns a Text sink writing to w.
func NewText(w io.Writer) *Text {
	l := logrus.New()
	l.Out = w
	l.Formatter = alertFormatter{}
	l.Level = logrus.InfoLevel
	return &Text{log: l}
}

// Emit implements detector.Sink.
func (t *Text) Emit(ev *detector.Event) {
	t.mu.Lock()
	t.b = appendTextEvent(t.b[:0], ev)
	msg := string(t.b)
	t.mu.Unlock()
	t.log.WithTime(ev.Time).Warn(msg)
}

// alertFormatter formats the Text logger's entries: time, "ALERT", message.
// The Text logger carries attack events only.
type alertFormatter struct{}

// Format implements logrus.Formatter.
func (alertFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b []byte
	if e.Buffer != nil {
		b = e.Buffer.Bytes()[:0]
	}
	b = e.Time.UTC().AppendFormat(b, textTimeLayout)
	b = append(b, " ALERT "...)
	b = append(b, e.Message...)
	b = append(b, '\n')
	return b, nil
}

// appendTextEvent appends the message part of ev's text line.
func appendTextEvent(b []byte, ev *detector.Event) []byte {
	b = append(b, ev.Rule.Name...)
	b = append(b, ' ')
	b = append(b, ev.Phase.String()...)
	b = appendAddrField(b, "target", ev.Target)
	rated := ev.Window > 0 && !ev.Rule.OneShot
	if ev.Phase == detector.PhaseEnd {
		if ev.EndReason != "" {
			b = append(b, " reason="...)
			b = appendTextString(b, ev.EndReason)
		}
		b = append(b, " duration="...)
		b = append(b, ev.Duration().Round(time.Millisecond).String()...)
		b = appendUintField(b, "packets", ev.Packets)
		b = appendUintField(b, "bytes", ev.Bytes)
		if rated {
			b = append(b, " peak_pps="...)
			b = appendTextRate(b, ev.PeakPPS)
			b = append(b, " peak_bps="...)
			b = appendBits(b, ev.PeakBPS)
		}
		b = appendSources(b, ev)
		if len(ev.TopSources) > 0 {
			b = append(b, " top="...)
			for i, s := range ev.TopSources {
				if i > 0 {
					b = append(b, ',')
				}
				b = s.Addr.AppendTo(b)
				b = append(b, '(')
				b = strconv.AppendUint(b, s.Packets, 10)
				b = append(b, ')')
			}
		}
	} else {
		b = appendAddrField(b, "src", ev.Source)
		if ev.HasICMP {
			b = append(b, " icmp="...)
			b = strconv.AppendUint(b, uint64(ev.ICMPType), 10)
			b = append(b, '/')
			b = strconv.AppendUint(b, uint64(ev.ICMPCode), 10)
		} else {
			b = append(b, " proto="...)
			b = append(b, detector.ProtoName(ev.Proto)...)
		}
		if t := ev.Tunnel; t.Depth > 0 {
			b = append(b, " tunnel="...)
			b = append(b, detector.ProtoName(t.Proto)...)
			b = append(b, ':')
			b = t.Src.AppendTo(b)
			b = append(b, '>')
			b = t.Dst.AppendTo(b)
			if t.Depth > 1 {
				b = append(b, '/')
				b = strconv.AppendUint(b, uint64(t.Depth), 10)
			}
		}
		if len(ev.VLANs) > 0 {
			b = append(b, " vlan="...)
			for i, v := range ev.VLANs {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendUint(b, uint64(v), 10)
			}
		}
		b = appendSources(b, ev)
		if rated {
			b = append(b, " pps="...)
			b = appendTextRate(b, ev.PPS)
			b = append(b, " bps="...)
			b = appendBits(b, ev.BPS)
		}
		if ev.Threshold > 0 {
			b = append(b, " threshold="...)
			b = appendTextRate(b, ev.Threshold)
		}
		b = appendUintField(b, "packets", ev.Packets)
		b = appendUintField(b, "bytes", ev.Bytes)
	}
	if len(ev.Extra) > 0 {
		keys := make([]string, 0, len(ev.Extra))
		for k := range ev.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = append(b, ' ')
			if textKey(k) {
				b = append(b, "x_"...)
			}
			b = appendTextString(b, k)
			b = append(b, '=')
			b = appendTextValue(b, k, ev.Extra[k])
		}
	}
	return b
}

// textKey reports whether k is a key of the text line's own, which a
// rule's Extra key must not repeat.
func textKey(k string) bool {
	switch k {
	case "target", "src", "icmp", "proto", "sources", "pps", "bps", "threshold",
		"packets", "bytes", "reason", "duration", "peak_pps", "peak_bps", "top":
		return true
	}
	return false
}

func appendAddrField(b []byte, k string, a netip.Addr) []byte {
	if !a.IsValid() {
		return b
	}
	b = append(b, ' ')
	b = append(b, k...)
	b = append(b, '=')
	return a.AppendTo(b)
}

func appendUintField(b []byte, k string, v uint64) []byte {
	b = append(b, ' ')
	b = append(b, k...)
	b = append(b, '=')
	return strconv.AppendUint(b, v, 10)
}

// appendSources writes the distinct sources, "~" marking an estimate.
func appendSources(b []byte, ev *detector.Event) []byte {
	b = append(b, " sources="...)
	if ev.SourcesEstimated {
		b = append(b, '~')
	}
	return strconv.AppendUint(b, ev.Sources, 10)
}

// appendTextRate writes a rate for reading: whole numbers from 100 up, one
// decimal below.
func appendTextRate(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	if math.Abs(v) >= 100 {
		return strconv.AppendFloat(b, v, 'f', 0, 64)
	}
	return strconv.AppendFloat(b, v, 'f', 1, 64)
}

// appendBits writes a bit rate with an SI prefix and one decimal
// ("40.0M" for 40 Mbit/s).
func appendBits(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	for _, u := range []struct {
		div  float64
		unit byte
	}{{1e12, 'T'}, {1e9, 'G'}, {1e6, 'M'}, {1e3, 'k'}} {
		if math.Abs(v) >= u.div {
			b = strconv.AppendFloat(b, v/u.div, 'f', 1, 64)
			return append(b, u.unit)
		}
	}
	return strconv.AppendFloat(b, v, 'f', 0, 64)
}

// appendTextString writes s bare when it is a plain token, quoted (Go
// syntax) when it holds spaces, quotes, '=' or anything unprintable.
func appendTextString(b []byte, s string) []byte {
	plain := s != ""
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}

// appendTextValue writes one Extra value: numbers as in the EVE output
// (rates for reading), addresses and times in their usual form, anything
// else through fmt.
func appendTextValue(b []byte, k string, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, '-')
	case string:
		return appendTextString(b, x)
	case float64:
		return appendTextFloat(b, k, x)
	case float32:
		return appendTextFloat(b, k, float64(x))
	case netip.Addr:
		return x.AppendTo(b)
	case []netip.Addr:
		for i, a := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = a.AppendTo(b)
		}
		return b
	case []string:
		return appendTextString(b, strings.Join(x, ","))
	case time.Time:
		return x.UTC().AppendFormat(b, textTimeLayout)
	case time.Duration:
		return append(b, x.String()...)
	case map[string]any:
		return appendTextString(b, textMap(x))
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if m, ok := e.(map[string]any); ok {
				parts[i] = textMap(m)
			} else {
				parts[i] = fmt.Sprint(e)
			}
		}
		return appendTextString(b, strings.Join(parts, ","))
	case fmt.Stringer:
		return appendTextString(b, x.String())
	}
	return appendTextString(b, fmt.Sprint(v))
}

// textMap spells a context object briefly: {ip, packets} pairs as
// ip(packets), anything else as key:value pairs in key order.
func textMap(m map[string]any) string {
	if ip, ok := m["ip"]; ok && len(m) == 2 {
		if n, ok := m["packets"]; ok {
			return fmt.Sprintf("%v(%v)", ip, n)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%v", k, m[k])
	}
	return strings.Join(parts, ",")
}

func appendTextFloat(b []byte, k string, v float64) []byte {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case isRateKey(k):
		return appendTextRate(b, v)
	}
	return appendFloat3(b, v)
}
