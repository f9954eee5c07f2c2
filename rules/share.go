package rules

import (
	"reflect"
	"strings"
)

// minEngineCap is the least a table cap becomes when PerEngine divides it.
const minEngineCap = 256

// linkScoped are the rules whose state lives on one engine whatever the
// number of engines (detector/shard routes link-scope traffic to the
// link's engine): their caps are not divided.
var linkScoped = map[string]bool{
	"icmp_redirect": true, "ra_flood": true, "rogue_ra": true, "nd_flood": true, "nd_spoof": true,
}

// PerEngine returns a copy of c for one of engines engines sharing the
// targets (detector/shard): every table cap (the int settings named
// max_*) of the rules keyed by target or source is divided by engines,
// but not below minEngineCap nor above the configured cap, so that the
// sensor's caps — and so its memory under a flood of new keys — stay
// those of the configuration however many engines there are. The
// link-scope rules keep their caps (their state lives on one engine). c
// is not changed; with engines <= 1 the copy is c's settings as they are.
func (c Config) PerEngine(engines int) Config {
	out := make(Config, len(Definitions()))
	for _, d := range Definitions() {
		s := c.settings(d)
		v := reflect.ValueOf(s)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			out[d.Info.Name] = s
			continue
		}
		cp := reflect.New(v.Elem().Type())
		cp.Elem().Set(v.Elem())
		if engines > 1 && !linkScoped[d.Info.Name] {
			divideCaps(cp.Elem(), engines)
		}
		out[d.Info.Name] = cp.Interface().(Settings)
	}
	return out
}

// divideCaps divides the max_* int fields of struct v by n (see PerEngine).
func divideCaps(v reflect.Value, n int) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !strings.HasPrefix(f.Tag.Get("mapstructure"), "max_") || f.Type.Kind() != reflect.Int {
			continue
		}
		x := v.Field(i)
		x.SetInt(int64(EngineCap(int(x.Int()), n)))
	}
}

// EngineCap is one engine's share of a sensor-wide cap of total entries
// over engines engines: total/engines, at least minEngineCap, at most
// total.
func EngineCap(total, engines int) int {
	if engines <= 1 {
		return total
	}
	return min(total, max(total/engines, minEngineCap))
}
