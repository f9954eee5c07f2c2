package hook

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icmpids/icmpids/detector"
)

// endpoint is a webhook endpoint: it answers each request with the next
// status of codes (the last one repeats) and keeps the bodies it took.
type endpoint struct {
	mu      sync.Mutex
	codes   []int
	calls   atomic.Int64
	bodies  [][]byte
	headers []http.Header
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(e.calls.Add(1))
	body, _ := io.ReadAll(r.Body)
	code := e.codes[min(n, len(e.codes))-1]
	if code == http.StatusOK {
		e.mu.Lock()
		e.bodies = append(e.bodies, body)
		e.headers = append(e.headers, r.Header.Clone())
		e.mu.Unlock()
	}
	w.WriteHeader(code)
}

func webhookConfig(url string) WebhookConfig {
	c := DefaultWebhookConfig()
	c.URL = url
	c.Timeout = 2 * time.Second
	c.Backoff = 10 * time.Millisecond
	return c
}

// TestWebhookPosts: one POST per event (every phase), the EVE JSON object
// as body, the configured headers on it.
func TestWebhookPosts(t *testing.T) {
	ep := &endpoint{codes: []int{http.StatusOK}}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	cfg := webhookConfig(srv.URL + "/hook")
	cfg.Headers = map[string]string{"authorization": "Bearer s3cret"}
	o, err := NewWebhook(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	phases := []detector.Phase{detector.PhaseStart, detector.PhaseUpdate, detector.PhaseEnd}
	for _, p := range phases {
		o.Emit(event(7, p))
	}
	closeWithin(t, o, 5*time.Second)
	if len(ep.bodies) != 3 {
		t.Fatalf("%d posts, want 3", len(ep.bodies))
	}
	for i, b := range ep.bodies {
		if a := eveAlert(t, b); a["phase"] != phases[i].String() || a["target"] != "192.0.2.7" {
			t.Errorf("post %d: attack %v", i, a)
		}
		h := ep.headers[i]
		if h.Get("Authorization") != "Bearer s3cret" || h.Get("Content-Type") != "application/json" {
			t.Errorf("post %d: headers %v", i, h)
		}
	}
	if st := o.Stats(); st.Sent != 3 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebhookRetries: a 500 is retried with backoff; an endpoint that
// answers 500 every time fails each event after retries+1 attempts, logged
// once for all of them; one that recovers takes the event; a 404 is not
// retried.
func TestWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name          string
		codes         []int
		events        int
		calls         int64
		sent, rejects uint64
		logged        string
	}{
		{"always 500", []int{500}, 3, 3 * 4, 0, 3, "HTTP 500"},
		{"500 then 200", []int{500, 503, 200}, 1, 3, 1, 0, ""},
		{"429 then 200", []int{429, 200}, 1, 2, 1, 0, ""},
		{"404 is not retried", []int{404}, 2, 2, 0, 2, "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := &endpoint{codes: tc.codes}
			srv := httptest.NewServer(ep)
			defer srv.Close()
			log, buf := testLog()
			o, err := NewWebhook(webhookConfig(srv.URL), Options{Log: log})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tc.events; i++ {
				o.Emit(event(i, detector.PhaseStart))
			}
			closeWithin(t, o, 5*time.Second)
			st := o.Stats()
			if ep.calls.Load() != tc.calls || st.Sent != tc.sent || st.Rejected != tc.rejects {
				t.Errorf("%d calls, stats %+v: want %d calls, %d sent, %d failed", ep.calls.Load(), st, tc.calls, tc.sent, tc.rejects)
			}
			if tc.logged != "" && (lines(buf.String(), "delivery failed") != 1 || !strings.Contains(buf.String(), tc.logged)) {
				t.Errorf("want one failure line naming %q:\n%s", tc.logged, buf)
			}
		})
	}
}

// TestWebhookNeverAnswers: an endpoint that takes the request and never
// answers costs each attempt its timeout, then the event fails; the URL's
// secret path stays out of the log.
func TestWebhookNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	log, buf := testLog()
	cfg := webhookConfig(srv.URL + "/services/T000/B000/SECRETTOKEN")
	cfg.Timeout, cfg.Retries = 200*time.Millisecond, 1
	o, err := NewWebhook(cfg, Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	o.Emit(event(1, detector.PhaseStart))
	took := time.Since(start)
	closeWithin(t, o, 2*time.Second)
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("two attempts of 200ms took %v", took)
	}
	if st := o.Stats(); st.Rejected != 1 || calls.Load() != 2 {
		t.Errorf("%d calls, stats %+v: want 2 calls, 1 failed", calls.Load(), st)
	}
	if out := buf.String(); !strings.Contains(out, "no answer within 200ms") || strings.Contains(out, "SECRETTOKEN") {
		t.Errorf("log should name the timeout and not the secret path:\n%s", out)
	}
}

// TestWebhookLiveDropsOldest: in a live sensor a never-answering endpoint
// never holds up Emit: the queue keeps the newest and counts the rest.
func TestWebhookLiveDropsOldest(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	log, buf := testLog()
	cfg := webhookConfig(srv.URL)
	cfg.Timeout, cfg.Retries, cfg.QueueSize = time.Second, 0, 2
	o, err := NewWebhook(cfg, Options{Live: true, QueueSize: cfg.QueueSize, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 1; i <= 50; i++ {
		o.Emit(event(i, detector.PhaseStart))
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("50 live Emits took %v", took)
	}
	closeWithin(t, o, 300*time.Millisecond)
	st := o.Stats()
	if st.Dropped < 47 || st.Sent != 0 {
		t.Errorf("stats %+v: want at least 47 of 50 dropped", st)
	}
	if lines(buf.String(), "queue is full") != 1 {
		t.Errorf("want the queue-full line once:\n%s", buf)
	}
}

// TestWebhookStop: a replay's Emit waiting on a never-answering endpoint
// returns at once on Stop.
func TestWebhookStop(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := webhookConfig(srv.URL)
	cfg.Timeout, cfg.Retries, cfg.Backoff = time.Minute, 5, time.Second
	stop, cancel := context.WithCancel(context.Background())
	o, err := NewWebhook(cfg, Options{Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	o.Emit(event(1, detector.PhaseStart))
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Emit returned %v after Stop", took)
	}
	closeWithin(t, o, time.Second)
	if st := o.Stats(); st.Dropped+st.Rejected != 1 || st.Sent != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestWebhookTLS: an https endpoint is trusted through tls.ca_file, and
// refused without it.
func TestWebhookTLS(t *testing.T) {
	ep := &endpoint{codes: []int{http.StatusOK}}
	srv := httptest.NewTLSServer(ep)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		caFile string
		sent   uint64
	}{{"trusted", ca, 1}, {"unknown CA", "", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := webhookConfig(srv.URL)
			cfg.TLS.CAFile, cfg.Retries = tc.caFile, 0
			o, err := NewWebhook(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			o.Emit(event(1, detector.PhaseStart))
			closeWithin(t, o, time.Second)
			if st := o.Stats(); st.Sent != tc.sent || st.Rejected != 1-tc.sent {
				t.Errorf("stats %+v, want %d sent", st, tc.sent)
			}
		})
	}
	cfg := webhookConfig(srv.URL)
	cfg.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := NewWebhook(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "output.webhook.tls.ca_file") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*WebhookConfig)
		want string
	}{
		{"defaults (off)", func(*WebhookConfig) {}, ""},
		{"https", func(c *WebhookConfig) { c.URL = "https://hooks.example.org/x" }, ""},
		{"ftp", func(c *WebhookConfig) { c.URL = "ftp://example.org/" }, "output.webhook.url"},
		{"no host", func(c *WebhookConfig) { c.URL = "http:///x" }, "output.webhook.url"},
		{"header with a line break", func(c *WebhookConfig) { c.Headers = map[string]string{"x-token": "a\r\nb"} }, "output.webhook.headers.x-token"},
		{"zero timeout", func(c *WebhookConfig) { c.Timeout = 0 }, "output.webhook.timeout"},
		{"negative retries", func(c *WebhookConfig) { c.Retries = -1 }, "output.webhook.retries"},
		{"backoff too long", func(c *WebhookConfig) { c.Backoff = time.Hour }, "output.webhook.backoff"},
		{"cert without key", func(c *WebhookConfig) { c.TLS.CertFile = "c.pem" }, "output.webhook.tls.cert_file"},
		{"queue_size 0", func(c *WebhookConfig) { c.QueueSize = 0 }, "output.webhook.queue_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultWebhookConfig()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
