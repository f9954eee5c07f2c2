package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/prefix"
)

// Override is one entry of rules.<rule>.overrides: other settings for the
// targets in some networks (FastNetMon's host groups). The most specific
// network holding a target decides which settings watch it; `enabled:
// false` makes the networks an allowlist of targets the rule never reports.
type Override struct {
	// Networks are the override's networks.
	Networks []netip.Prefix
	// Keys are the keys the override sets, in the order given.
	Keys []string
	// Settings are the rule's settings (rules.<rule>.*) with the
	// override's keys on top.
	Settings Settings
}

// Overridden is the settings of a rule with overrides: what Config holds
// for it. Base returns its own settings.
type Overridden struct {
	Base      Settings
	Overrides []Override
	name      string
}

// Validate checks the rule's settings, each override's (naming the key as
// rules.<rule>.overrides[i].<key>), and that no network is in two
// overrides.
func (o *Overridden) Validate() error {
	errs := []error{o.Base.Validate()}
	seen := map[netip.Prefix]int{}
	for i, ov := range o.Overrides {
		if err := ov.Settings.Validate(); err != nil {
			at := fmt.Sprintf("rules.%s.overrides[%d].", o.name, i)
			errs = append(errs, errors.New(strings.ReplaceAll(err.Error(), "rules."+o.name+".", at)))
		}
		for _, n := range ov.Networks {
			if j, dup := seen[n]; dup {
				errs = append(errs, fmt.Errorf("rules.%s.overrides[%d].networks: %s is in overrides[%d] already", o.name, i, n, j))
			}
			seen[n] = i
		}
	}
	return errors.Join(errs...)
}

// Base returns a rule's own settings: s, or the base of an Overridden.
func Base(s Settings) Settings {
	if o, ok := s.(*Overridden); ok {
		return o.Base
	}
	return s
}

// OverridesOf returns the overrides of s (none unless s is Overridden).
func OverridesOf(s Settings) []Override {
	if o, ok := s.(*Overridden); ok {
		return o.Overrides
	}
	return nil
}

// splitOverrides takes the overrides: lists out of raw, the rules: block
// as viper holds it, returning raw without them (a copy where one was
// taken) and the lists by rule name.
func splitOverrides(raw any) (any, map[string][]any, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return raw, nil, nil
	}
	var lists map[string][]any
	out := make(map[string]any, len(m))
	for name, v := range m {
		out[name] = v
		rm, ok := v.(map[string]any)
		if !ok {
			continue
		}
		ov, has := rm["overrides"]
		if !has {
			continue
		}
		list, ok := ov.([]any)
		if !ok {
			return nil, nil, fmt.Errorf("rules.%s.overrides: want a list of {networks: [...], key: value}, got %T", name, ov)
		}
		rest := make(map[string]any, len(rm))
		for k, x := range rm {
			if k != "overrides" {
				rest[k] = x
			}
		}
		out[name] = rest
		if lists == nil {
			lists = map[string][]any{}
		}
		lists[name] = list
	}
	return out, lists, nil
}

// decodeOverrides decodes rule d's overrides over its settings base.
func decodeOverrides(d Definition, base Settings, list []any, hook mapstructure.DecodeHookFunc) (*Overridden, error) {
	name := d.Info.Name
	keys := settingKeys(base)
	o := &Overridden{Base: base, name: name}
	for i, item := range list {
		at := fmt.Sprintf("rules.%s.overrides[%d]", name, i)
		m, err := stringMap(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", at, err)
		}
		var ov Override
		nets, ok := m["networks"]
		if !ok {
			return nil, fmt.Errorf("%s.networks: missing (the networks the override is for)", at)
		}
		if ov.Networks, err = parseNetworks(nets); err != nil {
			return nil, fmt.Errorf("%s.networks: %v", at, err)
		}
		settings := map[string]any{}
		for k, v := range m {
			if k == "networks" {
				continue
			}
			if !keys[k] {
				known := make([]string, 0, len(keys))
				for key := range keys {
					known = append(known, key)
				}
				sort.Strings(known)
				return nil, fmt.Errorf("%s.%s: unknown key (the keys of rules.%s: networks, %s)", at, k, name, strings.Join(known, ", "))
			}
			settings[k] = v
			ov.Keys = append(ov.Keys, k)
		}
		if len(ov.Keys) == 0 {
			return nil, fmt.Errorf("%s: sets no key besides networks", at)
		}
		sort.Strings(ov.Keys)
		// A copy of the rule's settings, the override's keys decoded on top.
		copyPtr := reflect.New(reflect.Indirect(reflect.ValueOf(base)).Type())
		copyPtr.Elem().Set(reflect.Indirect(reflect.ValueOf(base)))
		dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
			DecodeHook: hook, ErrorUnused: true, WeaklyTypedInput: true, Result: copyPtr.Interface(),
		})
		if err != nil {
			return nil, err
		}
		if err := dec.Decode(settings); err != nil {
			return nil, fmt.Errorf("%s: %v", at, strings.ReplaceAll(err.Error(), "\n", " "))
		}
		s, ok := copyPtr.Interface().(Settings)
		if !ok {
			return nil, fmt.Errorf("%s: settings of type %T", at, copyPtr.Interface())
		}
		ov.Settings = s
		o.Overrides = append(o.Overrides, ov)
	}
	return o, nil
}

// settingKeys is the set of a settings struct's keys.
func settingKeys(s Settings) map[string]bool {
	keys := map[string]bool{}
	for _, kv := range Fields(s) {
		keys[kv.Key] = true
	}
	return keys
}

func stringMap(v any) (map[string]any, error) {
	switch m := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[strings.ToLower(k)] = x
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[strings.ToLower(fmt.Sprint(k))] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("want {networks: [...], key: value}, got %T", v)
}

// parseNetworks reads a list of networks (or addresses), or one.
func parseNetworks(v any) ([]netip.Prefix, error) {
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []any:
		for _, e := range x {
			items = append(items, fmt.Sprint(e))
		}
	case []string:
		items = x
	default:
		return nil, fmt.Errorf("want a list of networks (10.0.0.0/8, 2001:db8::/32), got %T", v)
	}
	var nets []netip.Prefix
	for j, s := range items {
		p, err := prefix.Parse(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("[%d]: %v", j, err)
		}
		nets = append(nets, p)
	}
	if len(nets) == 0 {
		return nil, errors.New("empty")
	}
	return nets, nil
}

// muted is the instance index of networks whose override switches the
// rule off.
const muted = -2

// scoped runs one rule with several sets of settings: base (nil when the
// rule is off outside its overrides) for the targets no override holds,
// and one instance per distinct override settings for the targets of
// their networks. A packet goes to base and to the instances whose
// networks hold its destination or its source (two prefix lookups, what
// ever the number of networks), so each instance sees the traffic of its
// targets; each reports only the targets it owns (detector.Reporter.Within),
// the most specific network holding the target deciding.
type scoped struct {
	base   detector.Rule
	inst   []detector.Rule // nil entries: none (never: muted has no instance)
	owner  prefix.Table[int]
	scopes []detector.Scope // [0]: base (Index -1); [i+1]: inst[i]
	info   detector.RuleInfo
	// filter is set when the instances' interests differ from their
	// union (each is then asked before it is handed a packet).
	filter    bool
	interests []detector.Interest // [0]: base; [i+1]: inst[i]
	union     detector.Interest
	// fleet is the rule's own fleet reporting (nil: none), resolved once:
	// the engine calls it at every fleet interval.
	fleet detector.FleetSource
}

// ownerOf is the index of the instance whose networks hold a most
// specifically, -1 for the rule's own settings.
func (s *scoped) ownerOf(a netip.Addr) int {
	if i, ok := s.owner.Lookup(a); ok {
		return i
	}
	return -1
}

// groupedScoped is scoped for a rule that groups echo requests by source
// across engines (shard.Grouper: smurf).
type groupedScoped struct{ *scoped }

// Group delegates to the rule's own Group.
func (g groupedScoped) Group(p *detector.Packet) bool {
	if gr, ok := g.first().(interface{ Group(*detector.Packet) bool }); ok {
		return gr.Group(p)
	}
	return false
}

// buildScoped builds rule d with its overrides, or returns nil when the
// rule is off everywhere.
func buildScoped(d Definition, o *Overridden) (detector.Rule, error) {
	s := &scoped{info: d.Info}
	if IsEnabled(o.Base) {
		r, err := d.build(o.Base)
		if err != nil {
			return nil, err
		}
		s.base = r
	}
	// One instance per distinct settings: many networks, few profiles.
	bySettings := map[string]int{}
	for _, ov := range o.Overrides {
		idx := muted
		if IsEnabled(ov.Settings) {
			key := fmt.Sprintf("%#v", reflect.Indirect(reflect.ValueOf(ov.Settings)).Interface())
			i, ok := bySettings[key]
			if !ok {
				r, err := d.build(ov.Settings)
				if err != nil {
					return nil, err
				}
				i = len(s.inst)
				s.inst = append(s.inst, r)
				bySettings[key] = i
			}
			idx = i
		}
		for _, n := range ov.Networks {
			s.owner.Add(n, idx)
		}
	}
	if s.base == nil && len(s.inst) == 0 {
		return nil, nil
	}
	s.scopes = make([]detector.Scope, len(s.inst)+1)
	for i := range s.scopes {
		s.scopes[i] = detector.Scope{Owners: &s.owner, Index: i - 1}
	}
	for _, r := range s.all() {
		if r != nil {
			s.info = r.Info()
			break
		}
	}
	s.interests = make([]detector.Interest, len(s.inst)+1)
	for i, r := range append([]detector.Rule{s.base}, s.inst...) {
		if r == nil {
			continue
		}
		in := interestOf(r)
		s.interests[i] = in
		for k := range in.ICMPv4 {
			s.union.ICMPv4[k] |= in.ICMPv4[k]
			s.union.ICMPv6[k] |= in.ICMPv6[k]
		}
		s.union.Fragments = s.union.Fragments || in.Fragments
	}
	for i, r := range append([]detector.Rule{s.base}, s.inst...) {
		if r != nil && s.interests[i] != s.union {
			s.filter = true
		}
	}
	s.fleet, _ = s.first().(detector.FleetSource)
	if _, ok := s.first().(interface{ Group(*detector.Packet) bool }); ok {
		return groupedScoped{s}, nil
	}
	return s, nil
}

func interestOf(r detector.Rule) detector.Interest {
	if i, ok := r.(detector.Interested); ok {
		return i.Interest()
	}
	return detector.Interest{ICMPv4: detector.AllTypes, ICMPv6: detector.AllTypes, Fragments: true}
}

// wants tells whether interest in covers p (as the engine's dispatch
// decides: the ICMP type of a message or of a fragment's header, or any
// fragment).
func wants(in detector.Interest, p *detector.Packet) bool {
	if p.Fragment && in.Fragments {
		return true
	}
	if !p.HasICMP {
		return false
	}
	if p.IPv6 {
		return in.ICMPv6.Has(p.ICMPType)
	}
	return in.ICMPv4.Has(p.ICMPType)
}

// all lists base and the instances (base may be nil).
func (s *scoped) all() []detector.Rule { return append([]detector.Rule{s.base}, s.inst...) }

func (s *scoped) first() detector.Rule {
	if s.base != nil {
		return s.base
	}
	return s.inst[0]
}

// route calls fn for base (index 0) and for the instances owning p's
// destination and source (index i+1), each once, and only those whose
// interest covers p.
func (s *scoped) route(p *detector.Packet, fn func(r detector.Rule, scope *detector.Scope)) {
	if s.base != nil && (!s.filter || wants(s.interests[0], p)) {
		fn(s.base, &s.scopes[0])
	}
	d, dok := s.owner.Lookup(p.Dst)
	if dok && d >= 0 && (!s.filter || wants(s.interests[d+1], p)) {
		fn(s.inst[d], &s.scopes[d+1])
	}
	if src, ok := s.owner.Lookup(p.Src); ok && src >= 0 && (!dok || src != d) && (!s.filter || wants(s.interests[src+1], p)) {
		fn(s.inst[src], &s.scopes[src+1])
	}
}

// routeAll is route without the interest filter (frames that are no
// ICMP message: the decoder's anomalies).
func (s *scoped) routeAll(p *detector.Packet, fn func(r detector.Rule, scope *detector.Scope)) {
	if s.base != nil {
		fn(s.base, &s.scopes[0])
	}
	d, dok := s.owner.Lookup(p.Dst)
	if dok && d >= 0 {
		fn(s.inst[d], &s.scopes[d+1])
	}
	if src, ok := s.owner.Lookup(p.Src); ok && src >= 0 && (!dok || src != d) {
		fn(s.inst[src], &s.scopes[src+1])
	}
}

// Info implements detector.Rule.
func (s *scoped) Info() detector.RuleInfo { return s.info }

// Interest implements detector.Interested: what any of the settings looks at.
func (s *scoped) Interest() detector.Interest { return s.union }

// Observe implements detector.Rule.
func (s *scoped) Observe(p *detector.Packet, rep detector.Reporter) {
	s.route(p, func(r detector.Rule, sc *detector.Scope) { r.Observe(p, rep.Within(sc)) })
}

// Tick implements detector.Rule: every instance ticks.
func (s *scoped) Tick(now time.Time, rep detector.Reporter) {
	if s.base != nil {
		s.base.Tick(now, rep.Within(&s.scopes[0]))
	}
	for i, r := range s.inst {
		r.Tick(now, rep.Within(&s.scopes[i+1]))
	}
}

// Classify implements detector.Classifier for the instances that are.
func (s *scoped) Classify(p *detector.Packet) {
	s.route(p, func(r detector.Rule, _ *detector.Scope) {
		if c, ok := r.(detector.Classifier); ok {
			c.Classify(p)
		}
	})
}

// Shadow implements detector.Shadower for the instances that are.
func (s *scoped) Shadow(p *detector.Packet) {
	s.route(p, func(r detector.Rule, _ *detector.Scope) {
		if sh, ok := r.(detector.Shadower); ok {
			sh.Shadow(p)
		}
	})
}

// ObserveSource implements detector.SourceObserver for the instances that are.
func (s *scoped) ObserveSource(p *detector.Packet, rep detector.Reporter) {
	s.route(p, func(r detector.Rule, sc *detector.Scope) {
		if so, ok := r.(detector.SourceObserver); ok {
			so.ObserveSource(p, rep.Within(sc))
		}
	})
}

// Describe implements detector.Describer: the instance owning target
// describes it.
func (s *scoped) Describe(target netip.Addr, extra map[string]any) {
	r := s.base
	if i := s.ownerOf(target); i >= 0 {
		r = s.inst[i]
	}
	if d, ok := r.(detector.Describer); ok && r != nil {
		d.Describe(target, extra)
	}
}

// Warm implements detector.Warmer.
func (s *scoped) Warm() {
	for _, r := range s.all() {
		if w, ok := r.(detector.Warmer); ok && r != nil {
			w.Warm()
		}
	}
}

// Tables implements detector.TableReporter: the instances' tables summed
// by name.
func (s *scoped) Tables() []detector.TableStat {
	var out []detector.TableStat
	at := map[string]int{}
	for _, r := range s.all() {
		tr, ok := r.(detector.TableReporter)
		if !ok || r == nil {
			continue
		}
		for _, t := range tr.Tables() {
			if i, ok := at[t.Name]; ok {
				out[i].Len += t.Len
				out[i].Cap += t.Cap
				out[i].Evicted += t.Evicted
				continue
			}
			at[t.Name] = len(out)
			out = append(out, t)
		}
	}
	return out
}

// ObserveLink implements detector.LinkObserver for the instances that are.
func (s *scoped) ObserveLink(p *detector.Packet, rep detector.Reporter) {
	s.route(p, func(r detector.Rule, sc *detector.Scope) {
		if l, ok := r.(detector.LinkObserver); ok {
			l.ObserveLink(p, rep.Within(sc))
		}
	})
}

// ObserveAnomaly implements detector.AnomalyObserver for the instances
// that are (routed by the frame's addresses as far as decoded).
func (s *scoped) ObserveAnomaly(p *detector.Packet, rep detector.Reporter) {
	s.routeAll(p, func(r detector.Rule, sc *detector.Scope) {
		if a, ok := r.(detector.AnomalyObserver); ok {
			a.ObserveAnomaly(p, rep.Within(sc))
		}
	})
}

// Flush implements detector.Flusher: every instance that holds evidence
// back reports it.
func (s *scoped) Flush(rep detector.Reporter) {
	if f, ok := s.base.(detector.Flusher); ok && s.base != nil {
		f.Flush(rep.Within(&s.scopes[0]))
	}
	for i, r := range s.inst {
		if f, ok := r.(detector.Flusher); ok {
			f.Flush(rep.Within(&s.scopes[i+1]))
		}
	}
}

// FloodScope implements detector.FloodScoper with the rule's own scope (or
// the first override's when the rule is off outside its overrides): the
// gauge that marks the queries of a flood under way for the other rules is
// one per rule. A rule without one returns a zero scope, which the gauge
// skips.
func (s *scoped) FloodScope() detector.FloodScope {
	if fs, ok := s.first().(detector.FloodScoper); ok {
		return fs.FloodScope()
	}
	return detector.FloodScope{}
}

// FleetReport implements detector.FleetSource with the rule's own
// observations (see FloodScope): a fleet correlator sums one set per rule.
func (s *scoped) FleetReport(until int64, n int, floor float64, o *detector.Observation, report func(*detector.Observation)) {
	if s.fleet != nil {
		s.fleet.FleetReport(until, n, floor, o, report)
	}
}

// FleetSlotWidth is the rule's own (0: it reports nothing to a fleet).
func (s *scoped) FleetSlotWidth() time.Duration {
	if s.fleet != nil {
		return s.fleet.FleetSlotWidth()
	}
	return 0
}

// JudgeFleet implements detector.FleetJudge: the settings owning the
// observation's key judge it.
func (s *scoped) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	r, sc := s.base, &s.scopes[0]
	if idx := s.ownerOf(o.Key); idx >= 0 {
		r, sc = s.inst[idx], &s.scopes[idx+1]
	} else if idx == muted {
		return
	}
	if j, ok := r.(detector.FleetJudge); ok && r != nil {
		j.JudgeFleet(o, i, rep.Within(sc))
	}
}
