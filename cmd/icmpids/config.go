package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/sirupsen/logrus"
	"github.com/spf13/viper"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/detector/prefix"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/output/hook"
	"github.com/icmpids/icmpids/rules"
)

// envPrefix prefixes the environment variables that override the
// configuration file: ICMPIDS_RULES_ICMP_FLOOD_ECHO_PPS=5000.
const envPrefix = "ICMPIDS"

// Config is the whole icmpids configuration, as configs/icmpids.yaml
// documents it.
type Config struct {
	// SensorName names this sensor in every event (EVE host, CEF dvchost,
	// part of the attack ids); "" means the host name.
	SensorName string          `mapstructure:"sensor_name"`
	LogLevel   string          `mapstructure:"log_level"`
	Output     OutputConfig    `mapstructure:"output"`
	Capture    CaptureConfig   `mapstructure:"capture"`
	Engine     detector.Config `mapstructure:"engine"`
	// Decode configures the encapsulation decoders (copied into
	// Engine.Decode once loaded).
	Decode detector.DecodeConfig `mapstructure:"decode"`
	Rules  rules.Config          `mapstructure:"rules"`
	// IgnoreSources are networks whose packets no rule sees (monitoring
	// servers; copied into Engine.IgnoreSources once loaded).
	IgnoreSources []string `mapstructure:"ignore_sources"`
	// Syslog holds the syslog output's settings (the collector's URL is
	// output.syslog); Metrics the Prometheus endpoint's.
	Syslog  output.SyslogConfig `mapstructure:"syslog"`
	Metrics MetricsConfig       `mapstructure:"metrics"`
	// Fleet configures the observations a sensor publishes to Kafka and
	// `icmpids correlate` (fleet.go).
	Fleet FleetConfig `mapstructure:"fleet"`
}

// MetricsConfig configures the Prometheus endpoint of `icmpids run`.
type MetricsConfig struct {
	// Addr is host:port to serve /metrics on; "" turns it off.
	Addr string `mapstructure:"addr"`
}

// OutputConfig selects where alerts go.
type OutputConfig struct {
	// Format is what stdout carries: "text", "eve", "none", or "auto"
	// (text on a terminal, eve otherwise).
	Format string `mapstructure:"format"`
	// EVE is a path to append EVE JSON lines to ("" for none).
	EVE string `mapstructure:"eve"`
	// Syslog is a collector URL (udp://, tcp://, tls://) or "".
	Syslog string `mapstructure:"syslog"`
	// QueueSize bounds each sink's queue of undelivered events.
	QueueSize int `mapstructure:"queue_size"`
	// EVEStatsInterval is how often a live sensor writes an EVE stats
	// event to the EVE file; 0 turns stats events off.
	EVEStatsInterval time.Duration `mapstructure:"eve_stats_interval"`
	// Redis writes every EVE event to Redis (fleet.go).
	Redis output.RedisConfig `mapstructure:"redis"`
	// Exec and Webhook act on each event (hooks.go).
	Exec    hook.ExecConfig    `mapstructure:"exec"`
	Webhook hook.WebhookConfig `mapstructure:"webhook"`
	// Kafka produces every EVE event (and fleet observations) to Kafka.
	Kafka output.KafkaConfig `mapstructure:"kafka"`
}

// CaptureConfig configures live capture.
type CaptureConfig struct {
	Interface     string        `mapstructure:"interface"`
	SnapLen       int           `mapstructure:"snaplen"`
	Promiscuous   bool          `mapstructure:"promiscuous"`
	Immediate     bool          `mapstructure:"immediate"`
	BufferSize    int           `mapstructure:"buffer_size"`
	BPF           string        `mapstructure:"bpf"`
	ReadTimeout   time.Duration `mapstructure:"read_timeout"`
	StatsInterval time.Duration `mapstructure:"stats_interval"`
	// Method is how frames are captured: "pcap" (libpcap) or "afpacket"
	// (Linux AF_PACKET, TPACKET_V3 rings).
	Method string `mapstructure:"method"`
	// Fanout is the number of AF_PACKET sockets (and reading goroutines)
	// in one fanout group; 0 means one per CPU.
	Fanout int `mapstructure:"fanout"`
}

func defaultConfig() Config {
	return Config{
		LogLevel: "info",
		Output: OutputConfig{Format: "auto", QueueSize: 10000, Redis: output.DefaultRedisConfig(),
			Exec: hook.DefaultExecConfig(), Webhook: hook.DefaultWebhookConfig(), Kafka: output.DefaultKafkaConfig()},
		Capture: CaptureConfig{
			SnapLen:       512,
			Promiscuous:   true,
			Immediate:     true,
			BufferSize:    32 << 20,
			BPF:           "",
			ReadTimeout:   100 * time.Millisecond,
			StatsInterval: time.Minute,
			Method:        "pcap",
			Fanout:        1,
		},
		Engine: detector.DefaultConfig(),
		Decode: detector.DefaultDecodeConfig(),
		Syslog: output.DefaultSyslogConfig(),
		Rules:  rules.DefaultConfig(),
		Fleet:  defaultFleetConfig(),

		IgnoreSources: []string{},
	}
}

// Validate checks every setting; each error names its key.
func (c Config) Validate() error {
	var errs []error
	if _, err := logrus.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("log_level: %q is not one of panic, fatal, error, warn, info, debug, trace", c.LogLevel))
	}
	switch c.Output.Format {
	case "auto", "text", "eve", "none":
	default:
		errs = append(errs, fmt.Errorf("output.format: %q is not one of auto, text, eve, none", c.Output.Format))
	}
	if c.Output.QueueSize < 1 || c.Output.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("output.queue_size: %d is out of range [1, 10000000]", c.Output.QueueSize))
	}
	if c.Output.Syslog != "" {
		if _, err := output.ParseSyslogURL(c.Output.Syslog); err != nil {
			errs = append(errs, fmt.Errorf("output.syslog: %w", err))
		}
	}
	if c.Output.EVEStatsInterval < 0 {
		errs = append(errs, fmt.Errorf("output.eve_stats_interval: %v must not be negative (0 turns stats events off)", c.Output.EVEStatsInterval))
	}
	errs = append(errs, c.Syslog.Validate(), c.Metrics.validate(), c.Output.Redis.Validate(),
		c.Output.Exec.Validate(), c.Output.Webhook.Validate(), c.Output.Kafka.Validate(), c.Fleet.validate())
	if c.Capture.SnapLen < 64 || c.Capture.SnapLen > 262144 {
		errs = append(errs, fmt.Errorf("capture.snaplen: %d is out of range [64, 262144]", c.Capture.SnapLen))
	}
	if c.Capture.BufferSize < 0 {
		errs = append(errs, fmt.Errorf("capture.buffer_size: %d must not be negative", c.Capture.BufferSize))
	}
	if c.Capture.ReadTimeout <= 0 || c.Capture.ReadTimeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("capture.read_timeout: %v is out of range (0, 10s]", c.Capture.ReadTimeout))
	}
	if c.Capture.StatsInterval < 0 {
		errs = append(errs, fmt.Errorf("capture.stats_interval: %v must not be negative (0 turns periodic stats off)", c.Capture.StatsInterval))
	}
	switch c.Capture.Method {
	case "pcap":
		if c.Capture.Fanout != 1 {
			errs = append(errs, fmt.Errorf("capture.fanout: %d needs capture.method afpacket (libpcap reads one socket)", c.Capture.Fanout))
		}
	case "afpacket":
		if runtime.GOOS != "linux" {
			errs = append(errs, fmt.Errorf("capture.method: afpacket needs Linux (this is %s): use pcap", runtime.GOOS))
		}
		if c.Capture.Fanout < 0 || c.Capture.Fanout > 1024 {
			errs = append(errs, fmt.Errorf("capture.fanout: %d is out of range [0, 1024] (0: one per CPU)", c.Capture.Fanout))
		}
	default:
		errs = append(errs, fmt.Errorf("capture.method: %q is not one of pcap, afpacket", c.Capture.Method))
	}
	for i, s := range c.IgnoreSources {
		if _, err := prefix.Parse(strings.TrimSpace(s)); err != nil {
			errs = append(errs, fmt.Errorf("ignore_sources[%d]: %v", i, err))
		}
	}
	errs = append(errs, c.Engine.Validate(),
		c.Rules.Validate())
	return errors.Join(errs...)
}

// configError marks an error as bad usage or bad configuration (exit 2).
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return configError{fmt.Errorf(format, args...)}
}

// newViper returns a viper instance that knows every configuration key
// (so ICMPIDS_* environment variables reach all of them) with the defaults.
func newViper() *viper.Viper {
	v := viper.New()
	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, val := range flatten(defaultConfig()) {
		v.SetDefault(key, val)
	}
	return v
}

// loadConfig reads the file at path (if any) into v and decodes the merged
// settings (defaults < file < environment < flags) strictly: unknown keys
// and values of the wrong type are errors naming the key.
func loadConfig(v *viper.Viper, path string) (Config, error) {
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return Config{}, usageErrorf("config %s: %v", path, pe.Err)
			}
			return Config{}, usageErrorf("config %s: %v", path, oneLine(err))
		}
	}
	known := knownKeys() // built once: a reflection walk of every default
	if err := checkEnv(os.Environ(), known); err != nil {
		return Config{}, usageErrorf("%v", err)
	}
	if err := unknownKeys(v.AllKeys(), known); err != nil {
		return Config{}, usageErrorf("config%s: %v", inFile(path), err)
	}
	cfg := defaultConfig()
	err := v.UnmarshalExact(&cfg, viper.DecodeHook(configHook()))
	if err != nil {
		return Config{}, usageErrorf("config%s: %s", inFile(path), withValues(v, oneLine(err)))
	}
	cfg.Engine.Decode = cfg.Decode
	if err := cfg.Validate(); err != nil {
		return Config{}, usageErrorf("config%s: %s", inFile(path), oneLine(err))
	}
	for _, s := range cfg.IgnoreSources {
		p, _ := prefix.Parse(strings.TrimSpace(s)) // valid: Validate parsed it
		cfg.Engine.IgnoreSources = append(cfg.Engine.IgnoreSources, p)
	}
	return cfg, nil
}

// configHook converts configuration values: durations ("10s"), comma
// lists, and the rules: block, which the rule registry decodes itself
// (rules.DecodeConfig).
func configHook() mapstructure.DecodeHookFunc {
	values := mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)
	rulesType := reflect.TypeOf(rules.Config(nil))
	return mapstructure.ComposeDecodeHookFunc(values,
		func(from, to reflect.Type, data any) (any, error) {
			if to != rulesType || from == rulesType {
				return data, nil
			}
			return rules.DecodeConfig(data, values)
		})
}

// checkEnv rejects ICMPIDS_* environment variables that name no key: a
// misspelt one must not be silently ignored, as an unknown YAML key is
// not. (ICMPIDS_TEST_* belong to the test binary.) keys are the known
// configuration keys (knownKeys); the variables' names are made from them
// only when one of the environment's is not found.
func checkEnv(environ []string, keys map[string]bool) error {
	var bad []string
	var known map[string]bool
	var names []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix+"_") || strings.HasPrefix(name, envPrefix+"_TEST_") {
			continue
		}
		if known == nil {
			known = map[string]bool{}
			for key := range keys {
				n := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
				known[n] = true
				names = append(names, n)
			}
		}
		if known[name] {
			continue
		}
		if near := nearest(name, names); near != "" {
			name += " (did you mean " + near + "?)"
		}
		bad = append(bad, name)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("environment: %s: no such configuration key (ICMPIDS_ + the key in upper case with . → _, e.g. ICMPIDS_RULES_ICMP_FLOOD_ECHO_PPS)", strings.Join(bad, ", "))
	}
	return nil
}

// knownKeys is the set of every configuration key, dotted.
func knownKeys() map[string]bool {
	known := map[string]bool{}
	for key := range flatten(defaultConfig()) {
		known[key] = true
	}
	for _, name := range rules.Names() {
		known["rules."+name+".overrides"] = true
	}
	return known
}

func inFile(path string) string {
	if path == "" {
		return ""
	}
	return " " + path
}

// oneLine folds a multi-line (joined or mapstructure) error into one line.
func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "decoding failed due to the following error(s):", "")
	s = strings.ReplaceAll(s, "'rules' rules.", "rules.") // the rules: block's own errors name their key
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l != "" && !strings.HasSuffix(l, "error(s) decoding:") {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// quotedKey matches the 'dotted.key' that mapstructure names in its errors
// (compiled when a configuration fails to decode, not at every start).
const quotedKey = `'([a-z0-9_]+(?:\.[a-z0-9_]+)+)'`

// withValues appends the offending value to a decode error naming a key, so
// the user sees what was wrong: ... cannot parse value as 'float64' (got "lots").
func withValues(v *viper.Viper, msg string) string {
	m := regexp.MustCompile(quotedKey).FindStringSubmatch(msg)
	if m == nil || !v.IsSet(m[1]) {
		return msg
	}
	return fmt.Sprintf("%s (got %q)", msg, fmt.Sprint(v.Get(m[1])))
}

// flatten lists the leaf settings of a config struct by dotted key.
func flatten(cfg any) map[string]any {
	out := make(map[string]any)
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct {
				walk(key, fv)
				continue
			}
			if rc, ok := fv.Interface().(rules.Config); ok {
				for name, s := range rc {
					walk(key+"."+name, reflect.Indirect(reflect.ValueOf(rules.Base(s))))
					if ovs := rules.OverridesOf(s); len(ovs) > 0 {
						out[key+"."+name+".overrides"] = ovs
					}
				}
				continue
			}
			out[key] = fv.Interface()
		}
	}
	walk("", reflect.ValueOf(cfg))
	return out
}
