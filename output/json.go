package output

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// timestampLayout is EVE's timestamp: microseconds and a +0000 style offset,
// as Suricata writes it and as the EVE schema's pattern requires.
const timestampLayout = "2006-01-02T15:04:05.000000-0700"

// jsonBuf builds one JSON object in a reused byte slice, keys in the order
// they are written. It knows the number formats of our events: rates with
// one decimal, seconds with up to three.
type jsonBuf struct {
	b    []byte
	keys []string // scratch for sorting map keys
	// seq, when not 0, is written as alert.context.event_seq (Kafka).
	seq uint64
}

// end drops the trailing comma of the last member written.
func (j *jsonBuf) end() {
	if n := len(j.b); n > 0 && j.b[n-1] == ',' {
		j.b = j.b[:n-1]
	}
}

// openObj starts the object value of key k.
func (j *jsonBuf) openObj(k string) {
	j.key(k)
	j.b = append(j.b, '{')
}

// closeObj ends an object member: drops the trailing comma, closes the
// object and adds the comma that follows a member.
func (j *jsonBuf) closeObj() {
	j.end()
	j.b = append(j.b, '}', ',')
}

func (j *jsonBuf) key(k string) {
	j.b = appendQuoted(j.b, k)
	j.b = append(j.b, ':')
}

func (j *jsonBuf) str(k, v string) {
	j.key(k)
	j.b = appendQuoted(j.b, v)
	j.b = append(j.b, ',')
}

func (j *jsonBuf) addr(k string, a netip.Addr) {
	j.key(k)
	j.addrValue(a)
	j.b = append(j.b, ',')
}

func (j *jsonBuf) addrValue(a netip.Addr) {
	if !a.IsValid() {
		j.b = append(j.b, "null"...)
		return
	}
	j.b = append(j.b, '"')
	j.b = a.AppendTo(j.b) // no characters to escape in an address
	j.b = append(j.b, '"')
}

func (j *jsonBuf) uint(k string, v uint64) {
	j.key(k)
	j.b = strconv.AppendUint(j.b, v, 10)
	j.b = append(j.b, ',')
}

func (j *jsonBuf) int(k string, v int64) {
	j.key(k)
	j.b = strconv.AppendInt(j.b, v, 10)
	j.b = append(j.b, ',')
}

func (j *jsonBuf) bool(k string, v bool) {
	j.key(k)
	j.b = strconv.AppendBool(j.b, v)
	j.b = append(j.b, ',')
}

// rate writes a rate (packets or bits per second) with one decimal.
func (j *jsonBuf) rate(k string, v float64) {
	j.key(k)
	j.b = appendRate(j.b, v)
	j.b = append(j.b, ',')
}

// seconds writes a duration in seconds, rounded to the millisecond.
func (j *jsonBuf) seconds(k string, d time.Duration) {
	j.key(k)
	j.b = appendSeconds(j.b, d)
	j.b = append(j.b, ',')
}

func (j *jsonBuf) time(k string, t time.Time) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = t.UTC().AppendFormat(j.b, timestampLayout)
	j.b = append(j.b, '"', ',')
}

// appendRate formats v with one decimal ("5000.0"); NaN and infinities,
// which JSON cannot carry, become null.
func appendRate(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'f', 1, 64)
}

// appendFloat3 formats v rounded to three decimals, without trailing zeros
// but always as a float ("0.5", "12.345", "3.0": an index that first sees
// an integer would map the field as one); NaN and infinities become null.
func appendFloat3(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', 3, 64)
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = append(b, '0')
	}
	if string(b[start:]) == "-0.0" {
		b = append(b[:start], '0', '.', '0')
	}
	return b
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return appendFloat3(b, d.Seconds())
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// control characters and U+2028/U+2029 are escaped.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// isRateKey tells whether a rule's Extra key names a rate, by our naming
// convention (a "_pps" or "_bps" suffix): rates get one decimal, as the
// event's own rates do.
func isRateKey(k string) bool {
	return strings.HasSuffix(k, "_pps") || strings.HasSuffix(k, "_bps") || k == "pps" || k == "bps"
}

// maxDepth bounds the nesting of Extra values written.
const maxDepth = 8

// value appends an Extra value. The common types are written without
// allocating; anything else goes through encoding/json, and what that
// cannot encode is written as its fmt representation.
func (j *jsonBuf) value(k string, v any, depth int) {
	switch x := v.(type) {
	case nil:
		j.b = append(j.b, "null"...)
	case string:
		j.b = appendQuoted(j.b, x)
	case bool:
		j.b = strconv.AppendBool(j.b, x)
	case int:
		j.b = strconv.AppendInt(j.b, int64(x), 10)
	case int8:
		j.b = strconv.AppendInt(j.b, int64(x), 10)
	case int16:
		j.b = strconv.AppendInt(j.b, int64(x), 10)
	case int32:
		j.b = strconv.AppendInt(j.b, int64(x), 10)
	case int64:
		j.b = strconv.AppendInt(j.b, x, 10)
	case uint:
		j.b = strconv.AppendUint(j.b, uint64(x), 10)
	case uint8:
		j.b = strconv.AppendUint(j.b, uint64(x), 10)
	case uint16:
		j.b = strconv.AppendUint(j.b, uint64(x), 10)
	case uint32:
		j.b = strconv.AppendUint(j.b, uint64(x), 10)
	case uint64:
		j.b = strconv.AppendUint(j.b, x, 10)
	case float32:
		j.float(k, float64(x))
	case float64:
		j.float(k, x)
	case time.Duration:
		j.b = appendSeconds(j.b, x)
	case time.Time:
		j.b = append(j.b, '"')
		j.b = x.UTC().AppendFormat(j.b, timestampLayout)
		j.b = append(j.b, '"')
	case netip.Addr:
		j.addrValue(x)
	case []netip.Addr:
		j.b = append(j.b, '[')
		for i, a := range x {
			if i > 0 {
				j.b = append(j.b, ',')
			}
			j.addrValue(a)
		}
		j.b = append(j.b, ']')
	case []string:
		j.b = append(j.b, '[')
		for i, s := range x {
			if i > 0 {
				j.b = append(j.b, ',')
			}
			j.b = appendQuoted(j.b, s)
		}
		j.b = append(j.b, ']')
	case []any:
		if depth >= maxDepth {
			j.b = append(j.b, "null"...)
			return
		}
		j.b = append(j.b, '[')
		for i, e := range x {
			if i > 0 {
				j.b = append(j.b, ',')
			}
			j.value(k, e, depth+1)
		}
		j.b = append(j.b, ']')
	case map[string]any:
		if depth >= maxDepth {
			j.b = append(j.b, "null"...)
			return
		}
		j.object(x, depth+1)
	case json.Marshaler, encoding.TextMarshaler:
		j.marshal(v)
	case fmt.Stringer:
		j.b = appendQuoted(j.b, x.String())
	case error:
		j.b = appendQuoted(j.b, x.Error())
	default:
		j.marshal(v)
	}
}

func (j *jsonBuf) float(k string, v float64) {
	if isRateKey(k) {
		j.b = appendRate(j.b, v)
		return
	}
	j.b = appendFloat3(j.b, v)
}

// marshal writes v through encoding/json (compact, no HTML escaping), or
// as a string of its fmt representation when it cannot be encoded.
func (j *jsonBuf) marshal(v any) {
	out, err := json.Marshal(v)
	if err != nil {
		j.b = appendQuoted(j.b, fmt.Sprint(v))
		return
	}
	j.b = append(j.b, out...)
}

// object writes m as a JSON object value, keys sorted.
func (j *jsonBuf) object(m map[string]any, depth int) {
	j.b = append(j.b, '{')
	j.fields(m, nil, depth)
	if n := len(j.b); j.b[n-1] == ',' {
		j.b = j.b[:n-1]
	}
	j.b = append(j.b, '}')
}

// fields writes the pairs of m, keys sorted, each followed by a comma, into
// the object being built. A key that reserved reports is written with an
// "x_" prefix so that no key appears twice in an object.
func (j *jsonBuf) fields(m map[string]any, reserved func(string) bool, depth int) {
	// The top level sorts in a reused scratch slice; nested maps (rare)
	// take their own so as not to clobber the caller's.
	var keys []string
	if depth <= 1 {
		keys = j.keys[:0]
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if reserved != nil && reserved(k) {
			j.b = append(j.b, '"', 'x', '_')
			at := len(j.b)
			j.b = appendQuoted(j.b, k)
			j.b = append(j.b[:at], j.b[at+1:]...) // drop the second opening quote
		} else {
			j.b = appendQuoted(j.b, k)
		}
		j.b = append(j.b, ':')
		j.value(k, m[k], depth)
		j.b = append(j.b, ',')
	}
	if depth <= 1 {
		clear(keys) // drop the string references the scratch holds
		j.keys = keys[:0]
	}
}
