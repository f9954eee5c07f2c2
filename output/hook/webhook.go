package hook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output"
)

// WebhookConfig configures output.webhook: one HTTP POST per event.
type WebhookConfig struct {
	// URL is the http:// or https:// endpoint; "" turns the output off.
	URL string `mapstructure:"url"`
	// Headers are added to every request (Authorization, a relay's
	// token); Content-Type is application/json.
	Headers map[string]string `mapstructure:"headers"`
	// Timeout bounds one attempt (connection, request and response).
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries is how many times a failed attempt (no answer, a 5xx, 408
	// or 429) is tried again; Backoff the wait before the first retry,
	// doubled for each next one (at most 30 s). Another 4xx or a
	// redirect is not retried.
	Retries int           `mapstructure:"retries"`
	Backoff time.Duration `mapstructure:"backoff"`
	// TLS configures https:// (ca_file, cert_file and key_file for a
	// client certificate, server_name).
	TLS WebhookTLSConfig `mapstructure:"tls"`
	// QueueSize is how many events a live sensor queues while the
	// endpoint is slow or down (then the oldest are dropped and counted).
	QueueSize int `mapstructure:"queue_size"`
}

// WebhookTLSConfig configures the TLS client of an https:// webhook.
type WebhookTLSConfig struct {
	// CAFile is a PEM bundle of the CAs that may sign the endpoint's
	// certificate; "" uses the system's roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key;
	// both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName is the name the certificate must carry; "" takes the
	// URL's host.
	ServerName string `mapstructure:"server_name"`
}

// DefaultWebhookConfig returns the defaults: off; 5 s an attempt; 3
// retries from 1 s; 1,000 queued.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{Headers: map[string]string{}, Timeout: 5 * time.Second, Retries: 3, Backoff: time.Second, QueueSize: 1000}
}

// maxBackoff caps the wait between two attempts.
const maxBackoff = 30 * time.Second

// Validate checks the settings; each error names its key.
func (c WebhookConfig) Validate() error {
	var errs []error
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("output.webhook.url: %q: %v", c.URL, err))
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("output.webhook.url: %q is not an http:// or https:// URL with a host", c.URL))
		}
	}
	for name, v := range c.Headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") || strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("output.webhook.headers.%s: not a valid header name and value", name))
		}
	}
	if c.Timeout <= 0 || c.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("output.webhook.timeout: %v is out of range (0, 10m]", c.Timeout))
	}
	if c.Retries < 0 || c.Retries > 100 {
		errs = append(errs, fmt.Errorf("output.webhook.retries: %d is out of range [0, 100]", c.Retries))
	}
	if c.Backoff < 0 || c.Backoff > maxBackoff {
		errs = append(errs, fmt.Errorf("output.webhook.backoff: %v is out of range [0, %v]", c.Backoff, maxBackoff))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("output.webhook.tls.cert_file, output.webhook.tls.key_file: give both or neither"))
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("output.webhook.queue_size: %d is out of range [1, 10000000]", c.QueueSize))
	}
	return errors.Join(errs...)
}

// load reads the CA bundle and client certificate.
func (c WebhookTLSConfig) load() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("output.webhook.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("output.webhook.tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		conf.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("output.webhook.tls.cert_file, output.webhook.tls.key_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// webhook POSTs each event's EVE JSON object, retrying with backoff.
type webhook struct {
	cfg    WebhookConfig
	client *http.Client
	header http.Header
	meta   atomic.Pointer[output.Meta]
	stop   <-chan struct{}
	ctx    context.Context // cancelled when Close gives up
	cancel context.CancelFunc
	counts
}

// NewWebhook returns the webhook output for cfg (valid; a URL set). It
// loads the TLS files; it sends nothing.
func NewWebhook(cfg WebhookConfig, opts Options) (*Output, error) {
	tlsConf, err := cfg.TLS.load()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "icmpids")
	}
	opts.Log = discardLog(opts.Log)
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhook{cfg: cfg, header: h, stop: stopChan(opts.Stop), ctx: ctx, cancel: cancel,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     tlsConf,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     time.Minute,
			},
			// A redirect is an answer, not an address to post to.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	w.counts.log = opts.Log
	w.meta.Store(&output.Meta{})
	return newOutput("webhook", w, opts), nil
}

func (w *webhook) setMeta(m output.Meta) { w.meta.Store(&m) }
func (w *webhook) counters() *counts     { return &w.counts }

// Emit POSTs ev, trying again after a failure that may pass, and returns
// once it is delivered, has failed for good, or Stop or Close cut it short.
func (w *webhook) Emit(ev *detector.Event) {
	body := output.AppendEVE(nil, ev, w.meta.Load())
	wait := w.cfg.Backoff
	for attempt := 0; ; attempt++ {
		err, again := w.post(body)
		if err == nil {
			w.ok()
			return
		}
		if !again || attempt >= w.cfg.Retries {
			w.fail(fmt.Errorf("output.webhook: %s: %w (after %d attempts)", Redact(w.cfg.URL), err, attempt+1))
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			w.dropped.Add(1)
			return
		case <-w.ctx.Done():
			t.Stop()
			w.dropped.Add(1)
			return
		}
		wait = min(2*wait, maxBackoff)
	}
}

// post makes one attempt; again tells whether a failure may pass.
func (w *webhook) post(body []byte) (err error, again bool) {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.Timeout)
	defer cancel()
	if w.stop != nil {
		go func() {
			select {
			case <-w.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err, false
	}
	req.Header = w.header.Clone()
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer within %v", w.cfg.Timeout), true
		}
		// url.Error quotes the whole URL, secrets and all: keep its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err, true
	}
	// Read (a little of) the body so that the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil, false
	case c >= 500, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return fmt.Errorf("HTTP %s", resp.Status), true
	default:
		return fmt.Errorf("HTTP %s", resp.Status), false
	}
}

// close waits for nothing (Emit returns once an event is done); it stops
// a delivery still under way and lets idle connections go.
func (w *webhook) close(context.Context) error {
	w.cancel()
	w.client.CloseIdleConnections()
	return nil
}

// Redact keeps a URL's scheme and host for logs: tokens ride in the
// rest (a Slack hook's path, a query's key, the user information).
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the webhook URL"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
