package rules

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"

	"github.com/icmpids/icmpids/detector"
)

// Definition declares one rule, once: everything else — the rules: block
// of the configuration (Config, its defaults, decoding and validation),
// `icmpids rules`, and configs/icmpids.yaml's rules section (WriteYAML) —
// is derived from the definitions Definitions lists. A rule file declares
// its Definition with define; adding a rule is that file, its tests, its
// README section and its line in Definitions.
type Definition struct {
	// Info is the rule's stable name, signature id and alert metadata.
	Info detector.RuleInfo
	// Doc is the comment above the rule's block in configs/icmpids.yaml:
	// what it flags, in a sentence or two.
	Doc string
	// Keys documents the rule's settings by key (the mapstructure tag):
	// each becomes the comment above that key in configs/icmpids.yaml. A
	// key without an entry is printed bare, after the comment of the key
	// before it (two keys under one comment).
	Keys map[string]string
	// defaults returns a pointer to a new settings struct holding the
	// rule's defaults; build makes a rule, with fresh state, from one.
	defaults func() Settings
	build    func(Settings) (detector.Rule, error)
}

// Settings is a rule's settings struct (a pointer to it in a Config): the
// keys under rules.<name>, an `enabled` switch among them.
type Settings interface {
	// Validate checks the settings; errors name the key in full
	// (rules.<name>.<key>) and the bad value.
	Validate() error
}

// define declares a rule whose settings are C (a struct with mapstructure
// tags and a bool field Enabled tagged "enabled"): defaults gives them,
// build makes the rule from valid settings.
func define[C any, PC interface {
	*C
	Settings
}](info detector.RuleInfo, doc string, keys map[string]string, defaults func() C, build func(C) (detector.Rule, error)) Definition {
	return Definition{
		Info: info,
		Doc:  doc,
		Keys: keys,
		defaults: func() Settings {
			c := defaults()
			return PC(&c)
		},
		build: func(s Settings) (detector.Rule, error) {
			c, ok := s.(PC)
			if !ok {
				return nil, fmt.Errorf("rules.%s: settings of type %T, want %T", info.Name, s, PC(nil))
			}
			return build(*c)
		},
	}
}

// Definitions lists every rule, in the contract's order: the registry.
func Definitions() []Definition {
	return []Definition{
		floodDefinition(),
		pingOfDeathDefinition(),
		fragOversizeDefinition(),
		fragOverlapDefinition(),
		fragTinyDefinition(),
		fragFloodDefinition(),
		smurfDefinition(),
		blackNurseDefinition(),
		redirectDefinition(),
		sweepDefinition(),
		tunnelDefinition(),
		carpetDefinition(),
		raFloodDefinition(),
		rogueRADefinition(),
		ndFloodDefinition(),
		ndSpoofDefinition(),
		errorAbuseDefinition(),
		decodeAnomalyDefinition(),
	}
}

// Config holds every rule's settings by rule name: the rules: block of the
// configuration file. Each value is a pointer to the rule's settings
// struct (e.g. *FloodConfig).
type Config map[string]Settings

// DefaultConfig returns every rule's defaults.
func DefaultConfig() Config {
	c := make(Config)
	for _, d := range Definitions() {
		c[d.Info.Name] = d.defaults()
	}
	return c
}

// settings returns c's settings for d, or d's defaults when c has none.
func (c Config) settings(d Definition) Settings {
	if s, ok := c[d.Info.Name]; ok && s != nil {
		return s
	}
	return d.defaults()
}

// Validate checks every rule's settings; errors name the key. A name in c
// that is no rule is an error too.
func (c Config) Validate() error {
	var errs []error
	known := map[string]bool{}
	for _, d := range Definitions() {
		known[d.Info.Name] = true
		errs = append(errs, c.settings(d).Validate())
	}
	for _, name := range sortedKeys(c) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("rules.%s: no such rule (known: %s)", name, strings.Join(Names(), ", ")))
		}
	}
	return errors.Join(errs...)
}

// Names lists the rules' names in the contract's order.
func Names() []string {
	var names []string
	for _, d := range Definitions() {
		names = append(names, d.Info.Name)
	}
	return names
}

func sortedKeys(c Config) []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Spec is one configured rule: built, whether it is enabled, and its
// settings (a pointer to the rule's settings struct).
type Spec struct {
	Rule     detector.Rule
	Enabled  bool
	Settings Settings
	// Overrides are its rules.<rule>.overrides, if any.
	Overrides []Override
	// Definition is the rule's registry entry (its documentation).
	Definition Definition
}

// Specs builds every rule from c, enabled or not, in the contract's order.
// A rule with overrides is enabled when it is on anywhere: outside its
// overrides or in one of them.
func Specs(c Config) ([]Spec, error) {
	var specs []Spec
	for _, d := range Definitions() {
		s := c.settings(d)
		r, err := d.build(Base(s))
		if err != nil {
			return nil, fmt.Errorf("rules.%s: %w", d.Info.Name, err)
		}
		specs = append(specs, Spec{Rule: r, Enabled: onAnywhere(s), Settings: Base(s), Overrides: OverridesOf(s), Definition: d})
	}
	return specs, nil
}

// Enabled builds the enabled rules of c, in the contract's order, with
// fresh state: what one engine runs. A rule with overrides runs as one
// rule holding each set of settings (see scoped); without, it is the rule
// itself, at no cost per packet.
func Enabled(c Config) ([]detector.Rule, error) {
	var rs []detector.Rule
	for _, d := range Definitions() {
		s := c.settings(d)
		if !onAnywhere(s) {
			continue
		}
		var r detector.Rule
		var err error
		if o, ok := s.(*Overridden); ok {
			r, err = buildScoped(d, o)
		} else {
			r, err = d.build(s)
		}
		if err != nil {
			return nil, fmt.Errorf("rules.%s: %w", d.Info.Name, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// onAnywhere tells whether a rule is on outside its overrides or in one.
func onAnywhere(s Settings) bool {
	if IsEnabled(s) {
		return true
	}
	for _, o := range OverridesOf(s) {
		if IsEnabled(o.Settings) {
			return true
		}
	}
	return false
}

// IsEnabled reads a settings struct's `enabled` switch (its bool field
// Enabled); settings without one are on. For settings with overrides it
// is the rule's own switch (outside the overrides).
func IsEnabled(s Settings) bool {
	v := reflect.Indirect(reflect.ValueOf(Base(s)))
	if v.Kind() != reflect.Struct {
		return true
	}
	f := v.FieldByName("Enabled")
	if !f.IsValid() || f.Kind() != reflect.Bool {
		return true
	}
	return f.Bool()
}

// SetEnabled sets a settings struct's `enabled` switch (for tests and
// tools that switch rules on and off).
func (c Config) SetEnabled(name string, on bool) error {
	s, ok := c[name]
	if !ok {
		return fmt.Errorf("rules.%s: no such rule", name)
	}
	f := reflect.Indirect(reflect.ValueOf(Base(s))).FieldByName("Enabled")
	if !f.IsValid() || !f.CanSet() {
		return fmt.Errorf("rules.%s: no enabled switch", name)
	}
	f.SetBool(on)
	return nil
}

// DecodeConfig decodes raw, the rules: block as nested maps (what viper
// holds), over the defaults, strictly: an unknown rule or key and a value
// of the wrong type are errors that name the key as rules.<rule>.<key>.
// hook converts values as the rest of the configuration does (durations,
// lists). The result is not validated.
func DecodeConfig(raw any, hook mapstructure.DecodeHookFunc) (Config, error) {
	defs := Definitions()
	c := DefaultConfig()
	// A struct type with one field per rule, tagged with its name, inside
	// one tagged "rules": mapstructure then names every key in full.
	fields := make([]reflect.StructField, len(defs))
	for i, d := range defs {
		fields[i] = reflect.StructField{
			Name: fmt.Sprintf("R%d", i),
			Type: reflect.TypeOf(c[d.Info.Name]),
			Tag:  reflect.StructTag(fmt.Sprintf(`mapstructure:"%s"`, d.Info.Name)),
		}
	}
	inner := reflect.StructOf(fields)
	outer := reflect.StructOf([]reflect.StructField{{Name: "Rules", Type: inner, Tag: `mapstructure:"rules"`}})
	target := reflect.New(outer)
	in := target.Elem().Field(0)
	for i, d := range defs {
		in.Field(i).Set(reflect.ValueOf(c[d.Info.Name]))
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       hook,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           target.Interface(),
	})
	if err != nil {
		return nil, err
	}
	raw, lists, err := splitOverrides(raw)
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(map[string]any{"rules": raw}); err != nil {
		return nil, err
	}
	for _, d := range defs {
		list, ok := lists[d.Info.Name]
		if !ok || len(list) == 0 {
			continue
		}
		o, err := decodeOverrides(d, c[d.Info.Name], list, hook)
		if err != nil {
			return nil, err
		}
		c[d.Info.Name] = o
	}
	for name := range lists {
		if _, ok := c[name]; !ok {
			return nil, fmt.Errorf("rules.%s: no such rule (known: %s)", name, strings.Join(Names(), ", "))
		}
	}
	return c, nil
}
