package output

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/icmpids/icmpids/detector"
)

// SyslogSDID is the RFC 5424 structured-data ID of our parameters. 32473 is
// the IANA Private Enterprise Number reserved for documentation (RFC 5612);
// a site that registers its own number can tell its collector to map it.
const SyslogSDID = "icmpids@32473"

// Default collector ports by scheme: syslog over UDP (RFC 5426), over TCP
// (RFC 6587, the port RFC 3195 registered) and over TLS (RFC 5425).
var syslogDefaultPorts = map[string]string{"udp": "514", "tcp": "601", "tls": "6514"}

// SyslogConfig configures the syslog output: the `syslog:` block of the
// configuration (the collector's URL is output.syslog). Errors from
// Validate name the key.
type SyslogConfig struct {
	// Format is the message format: "rfc5424" (default) or "rfc3164" (BSD
	// syslog, for old collectors).
	Format string `mapstructure:"format"`
	// Body is what the message carries: "eve" (the EVE JSON alert, as the
	// EVE file has it) or "cef" (ArcSight Common Event Format).
	Body string `mapstructure:"body"`
	// Framing is how messages are delimited on TCP and TLS (RFC 6587):
	// "octet-counting" (a length prefix), "non-transparent" (a newline
	// after each message, what Wazuh and syslog-ng's network() source
	// expect for RFC 3164), or "auto": octet counting for RFC 5424,
	// newlines for RFC 3164. UDP carries one message a datagram.
	Framing string `mapstructure:"framing"`
	// Facility is the syslog facility name (kern, user, ..., local0-7).
	Facility string `mapstructure:"facility"`
	// AppName is the RFC 5424 APP-NAME and the RFC 3164 TAG.
	AppName string `mapstructure:"app_name"`
	// Hostname is the HOSTNAME field; "" takes the machine's name.
	Hostname string `mapstructure:"hostname"`
	// Severity maps a rule name to a syslog severity name (emerg, alert,
	// crit, err, warning, notice, info, debug). Rules not listed map from
	// their EVE severity: 1 → crit, 2 → warning, 3 and above → notice.
	Severity map[string]string `mapstructure:"severity"`
	// TLS configures tls:// collectors.
	TLS SyslogTLSConfig `mapstructure:"tls"`
	// QueueSize is how many events wait for the collector (live mode: more
	// are dropped and counted).
	QueueSize int `mapstructure:"queue_size"`
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts while the collector is unreachable.
	ReconnectMin time.Duration `mapstructure:"reconnect_min"`
	ReconnectMax time.Duration `mapstructure:"reconnect_max"`
	// WriteTimeout bounds one write to the collector: a collector that stops
	// reading is treated as down and reconnected.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// BlockTimeout is, for a replay (which waits for room in a full queue
	// rather than drop), how long it waits while the collector takes
	// nothing before it gives up: from then on, events that find the queue
	// full are dropped and counted until the collector takes events again.
	BlockTimeout time.Duration `mapstructure:"block_timeout"`
}

// SyslogTLSConfig configures the TLS client of a tls:// collector.
type SyslogTLSConfig struct {
	// CAFile is a PEM bundle of the CAs that may sign the collector's
	// certificate; "" uses the system's roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// collectors that authenticate their clients; both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName is the name the collector's certificate must carry; ""
	// takes the host of the URL.
	ServerName string `mapstructure:"server_name"`
}

// DefaultSyslogConfig returns the syslog defaults.
func DefaultSyslogConfig() SyslogConfig {
	return SyslogConfig{
		Format:       "rfc5424",
		Body:         "eve",
		Framing:      "auto",
		Facility:     "local5",
		AppName:      "icmpids",
		Hostname:     "",
		Severity:     map[string]string{},
		QueueSize:    10000,
		ReconnectMin: 500 * time.Millisecond,
		ReconnectMax: 30 * time.Second,
		WriteTimeout: 10 * time.Second,
		BlockTimeout: time.Minute,
	}
}

var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

var syslogSeverities = map[string]int{
	"emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
	"warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}

// Validate checks the settings; errors name the key.
func (c SyslogConfig) Validate() error {
	var errs []error
	switch c.Format {
	case "rfc5424", "rfc3164":
	default:
		errs = append(errs, fmt.Errorf("syslog.format: %q is not one of rfc5424, rfc3164", c.Format))
	}
	switch c.Body {
	case "eve", "cef":
	default:
		errs = append(errs, fmt.Errorf("syslog.body: %q is not one of eve, cef", c.Body))
	}
	switch c.Framing {
	case "auto", "octet-counting", "non-transparent":
	default:
		errs = append(errs, fmt.Errorf("syslog.framing: %q is not one of auto, octet-counting, non-transparent", c.Framing))
	}
	if _, ok := syslogFacilities[c.Facility]; !ok {
		errs = append(errs, fmt.Errorf("syslog.facility: %q is not a facility (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0-local7)", c.Facility))
	}
	// The RFC 5424 grammar decides (through the library that builds the
	// messages): APP-NAME is 1-48 printable US-ASCII characters, HOSTNAME
	// 1-255. RFC 3164's TAG is stricter: at most 32 alphanumerics.
	if m := (&rfc5424.SyslogMessage{}); m.SetAppname(c.AppName) == nil || m.Appname == nil || *m.Appname != c.AppName {
		errs = append(errs, fmt.Errorf("syslog.app_name: %q is not 1 to 48 printable ASCII characters without spaces", c.AppName))
	} else if c.Format == "rfc3164" && !tag3164(c.AppName) {
		errs = append(errs, fmt.Errorf("syslog.app_name: %q: with syslog.format rfc3164 it must be at most 32 letters, digits, '-', '_' or '.'", c.AppName))
	}
	if c.Hostname != "" {
		if m := (&rfc5424.SyslogMessage{}); m.SetHostname(c.Hostname) == nil || m.Hostname == nil || *m.Hostname != c.Hostname {
			errs = append(errs, fmt.Errorf("syslog.hostname: %q is not 1 to 255 printable ASCII characters without spaces", c.Hostname))
		}
	}
	for _, rule := range slices.Sorted(maps.Keys(c.Severity)) {
		if _, ok := syslogSeverities[c.Severity[rule]]; !ok {
			errs = append(errs, fmt.Errorf("syslog.severity.%s: %q is not one of emerg, alert, crit, err, warning, notice, info, debug", rule, c.Severity[rule]))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("syslog.tls.cert_file and syslog.tls.key_file: give both or neither"))
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("syslog.queue_size: %d is out of range [1, 10000000]", c.QueueSize))
	}
	if c.ReconnectMin <= 0 {
		errs = append(errs, fmt.Errorf("syslog.reconnect_min: %v must be positive", c.ReconnectMin))
	}
	if c.ReconnectMax < c.ReconnectMin {
		errs = append(errs, fmt.Errorf("syslog.reconnect_max: %v must be at least syslog.reconnect_min (%v)", c.ReconnectMax, c.ReconnectMin))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("syslog.write_timeout: %v must be positive", c.WriteTimeout))
	}
	if c.BlockTimeout <= 0 {
		errs = append(errs, fmt.Errorf("syslog.block_timeout: %v must be positive", c.BlockTimeout))
	}
	return errors.Join(errs...)
}

func tag3164(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// SyslogTarget is a parsed collector URL.
type SyslogTarget struct {
	Scheme string // udp, tcp or tls
	Addr   string // host:port
	Host   string
}

// String returns the target as a URL.
func (t SyslogTarget) String() string { return t.Scheme + "://" + t.Addr }

// ParseSyslogURL parses a collector URL: udp://host[:514], tcp://host[:601]
// or tls://host[:6514] (IPv6 hosts in brackets). Errors say what is wrong,
// not which key (the caller knows).
func ParseSyslogURL(raw string) (SyslogTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SyslogTarget{}, fmt.Errorf("%q is not a URL: %v", raw, errors.Unwrap(err))
	}
	def, ok := syslogDefaultPorts[u.Scheme]
	if !ok {
		return SyslogTarget{}, fmt.Errorf("%q: the scheme must be udp://, tcp:// or tls://", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return SyslogTarget{}, fmt.Errorf("%q: no host (want %s://HOST:PORT)", raw, u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return SyslogTarget{}, fmt.Errorf("%q: only %s://HOST:PORT is allowed (no path, query or user)", raw, u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = def
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return SyslogTarget{}, fmt.Errorf("%q: port %q is not in [1, 65535]", raw, port)
	}
	return SyslogTarget{Scheme: u.Scheme, Addr: net.JoinHostPort(u.Hostname(), port), Host: u.Hostname()}, nil
}

// syslogFormatter turns events into syslog messages (without transport
// framing). It is used by one goroutine at a time.
type syslogFormatter struct {
	rfc3164  bool
	cef      bool
	facility int
	severity map[string]int
	appName  string
	hostname string
	procID   string
	version  string               // product version, for CEF
	meta     atomic.Pointer[Meta] // the sensor's name and input, for EVE bodies and CEF
	body     []byte
}

func newSyslogFormatter(cfg SyslogConfig, version string) (*syslogFormatter, error) {
	host := cfg.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "-"
		}
		// RFC 3164 wants the name without the domain; RFC 5424 prefers the
		// FQDN. os.Hostname gives what the kernel has either way.
		host = h
	}
	f := &syslogFormatter{
		rfc3164:  cfg.Format == "rfc3164",
		cef:      cfg.Body == "cef",
		facility: syslogFacilities[cfg.Facility],
		severity: make(map[string]int, len(cfg.Severity)),
		appName:  cfg.AppName,
		hostname: host,
		procID:   strconv.Itoa(os.Getpid()),
		version:  version,
	}
	for rule, name := range cfg.Severity {
		f.severity[rule] = syslogSeverities[name]
	}
	return f, nil
}

// ruleSeverity is the syslog severity of the rule's events.
func (f *syslogFormatter) ruleSeverity(r *detector.RuleInfo) int {
	if s, ok := f.severity[r.Name]; ok {
		return s
	}
	switch {
	case r.Severity <= 1:
		return 2 // crit
	case r.Severity == 2:
		return 4 // warning
	}
	return 5 // notice
}

// message appends the syslog message for ev to dst.
func (f *syslogFormatter) message(dst []byte, ev *detector.Event) ([]byte, error) {
	f.body = f.body[:0]
	if f.cef {
		f.body = AppendCEF(f.body, ev, f.version, f.meta.Load())
	} else {
		f.body = AppendEVE(f.body, ev, f.meta.Load())
	}
	if cap(f.body) > maxKeptBuffer {
		defer func() { f.body = nil }()
	}
	pri := f.facility*8 + f.ruleSeverity(&ev.Rule)
	if f.rfc3164 {
		return f.append3164(dst, pri, ev.Time), nil
	}
	return f.append5424(dst, pri, ev)
}

// append5424 builds an RFC 5424 message with go-syslog's builder, which
// checks every header field against the RFC's grammar and escapes the
// structured-data values (", \ and ]).
func (f *syslogFormatter) append5424(dst []byte, pri int, ev *detector.Event) ([]byte, error) {
	m := &rfc5424.SyslogMessage{}
	m.SetPriority(uint8(pri))
	m.SetVersion(1)
	m.SetTimestamp(ev.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	m.SetHostname(f.hostname)
	m.SetAppname(f.appName)
	m.SetProcID(f.procID)
	m.SetMsgID(ev.Rule.Name)
	m.SetParameter(SyslogSDID, "rule", ev.Rule.Name)
	m.SetParameter(SyslogSDID, "phase", ev.Phase.String())
	if ev.Target.IsValid() {
		m.SetParameter(SyslogSDID, "target", ev.Target.String())
	}
	m.SetParameter(SyslogSDID, "packets", strconv.FormatUint(ev.Packets, 10))
	if ev.Window > 0 && !ev.Rule.OneShot {
		m.SetParameter(SyslogSDID, "pps", strconv.FormatFloat(ev.PPS, 'f', 1, 64))
	}
	m.SetMessage(string(f.body))
	s, err := m.String()
	if err != nil {
		return dst, fmt.Errorf("syslog: building the RFC 5424 message for %s: %w", ev.Rule.Name, err)
	}
	return append(dst, s...), nil
}

// append3164 builds a BSD syslog message: <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG,
// the timestamp in local time as RFC 3164 has it.
func (f *syslogFormatter) append3164(dst []byte, pri int, t time.Time) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	dst = t.Local().AppendFormat(dst, time.Stamp)
	dst = append(dst, ' ')
	dst = append(dst, shortHost(f.hostname)...)
	dst = append(dst, ' ')
	dst = append(dst, f.appName...)
	dst = append(dst, '[')
	dst = append(dst, f.procID...)
	dst = append(dst, "]: "...)
	return append(dst, f.body...)
}

// shortHost strips the domain from a host name (RFC 3164 §5.3); addresses
// are left whole.
func shortHost(h string) string {
	if net.ParseIP(h) != nil {
		return h
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// octetCounting tells whether stream messages get a length prefix.
func (c SyslogConfig) octetCounting() bool {
	switch c.Framing {
	case "octet-counting":
		return true
	case "non-transparent":
		return false
	}
	return c.Format != "rfc3164"
}
