package rules

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// yamlWidth is the column the generated comments wrap at.
const yamlWidth = 78

// WriteYAML writes the rules: block of configs/icmpids.yaml for c: each
// rule's documentation (Definition.Doc and Keys) as comments, and every
// key with c's value, in the registry's order and each settings struct's
// field order. With DefaultConfig it is the shipped file's rules section.
func WriteYAML(w io.Writer, c Config) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "rules:")
	for i, d := range Definitions() {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		comment(bw, "  ", d.Doc)
		fmt.Fprintf(bw, "  %s:\n", d.Info.Name)
		for _, kv := range Fields(c.settings(d)) {
			if doc := d.Keys[kv.Key]; doc != "" {
				comment(bw, "    ", doc)
			}
			fmt.Fprintf(bw, "    %s: %s\n", kv.Key, FormatValue(kv.Value))
		}
	}
	return bw.Flush()
}

// comment writes text as '#' comment lines wrapped at yamlWidth.
func comment(w io.Writer, indent, text string) {
	line := indent + "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > yamlWidth && len(line) > len(indent)+1 {
			fmt.Fprintln(w, line)
			line = indent + "#"
		}
		line += " " + word
	}
	fmt.Fprintln(w, line)
}

// KeyValue is one setting of a rule: its key (the mapstructure tag) and value.
type KeyValue struct {
	Key   string
	Value any
}

// Fields lists a settings struct's keys and values in field order.
func Fields(s Settings) []KeyValue {
	v := reflect.Indirect(reflect.ValueOf(Base(s)))
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []KeyValue
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, KeyValue{key, v.Field(i).Interface()})
	}
	return out
}

// FormatValue spells a setting the way the YAML file does: durations in Go
// syntax without zero units (1m, not 1m0s), floats without a trailing
// ".0", lists in flow style.
func FormatValue(v any) string {
	switch x := v.(type) {
	case time.Duration:
		s := x.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case string:
		return strconv.Quote(x)
	}
	return fmt.Sprint(v)
}
