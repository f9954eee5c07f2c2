package output

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/icmpids/icmpids/detector"
)

// KafkaConfig configures the Kafka output (output.kafka).
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port; none turns the output off.
	Brokers []string `mapstructure:"brokers"`
	// Topic receives every EVE event.
	Topic string `mapstructure:"topic"`
	// ObservationsTopic receives the sensor's fleet observations (see
	// fleet.interval); "" sends none.
	ObservationsTopic string `mapstructure:"observations_topic"`
	// Key is each EVE record's key: "attack_id" (alert.context.attack.id:
	// one attack's events stay in one partition, in order), "target" (the
	// victim's address) or "none" (the client spreads the records).
	Key string `mapstructure:"key"`
	// Acks is "all" (every in-sync replica, with the idempotent producer:
	// no duplicates from retries, order kept), "leader" or "none".
	Acks string `mapstructure:"acks"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string `mapstructure:"compression"`
	// QueueSize is how many records the client holds while the brokers
	// are away; live mode refuses (and counts) the overflow at once.
	QueueSize int `mapstructure:"queue_size"`
	// DeliveryTimeout is how long a record may wait for a broker's
	// acknowledgement before it is given up (and counted).
	DeliveryTimeout time.Duration   `mapstructure:"delivery_timeout"`
	TLS             KafkaTLSConfig  `mapstructure:"tls"`
	SASL            KafkaSASLConfig `mapstructure:"sasl"`
}

// KafkaTLSConfig configures TLS to the brokers.
type KafkaTLSConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// CAFile is a PEM bundle to verify the brokers with ("" = the
	// system's); CertFile and KeyFile a client certificate.
	CAFile   string `mapstructure:"ca_file"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ServerName overrides the name verified in the brokers' certificates.
	ServerName string `mapstructure:"server_name"`
}

// KafkaSASLConfig configures SASL authentication.
type KafkaSASLConfig struct {
	// Mechanism is "" (none), plain, scram-sha-256 or scram-sha-512.
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  string `mapstructure:"password"`
}

// DefaultKafkaConfig returns the defaults: off, topics icmpids.eve and
// icmpids.obs, keyed by attack id, acks from all replicas with the
// idempotent producer, lz4, 10,000 records queued, 2 minutes to deliver.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{
		Topic: "icmpids.eve", ObservationsTopic: "icmpids.obs", Key: "attack_id",
		Acks: "all", Compression: "lz4", QueueSize: 10000, DeliveryTimeout: 2 * time.Minute,
	}
}

// Enabled tells whether brokers are configured.
func (c KafkaConfig) Enabled() bool {
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) != "" {
			return true
		}
	}
	return false
}

// Validate checks the settings; each error names its key.
func (c KafkaConfig) Validate() error {
	var errs []error
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("output.kafka.brokers: %q is not host:port", b))
		}
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("output.kafka.topic: must not be empty"))
	}
	switch c.Key {
	case "attack_id", "target", "none":
	default:
		errs = append(errs, fmt.Errorf("output.kafka.key: %q is not one of attack_id, target, none", c.Key))
	}
	switch c.Acks {
	case "all", "leader", "none":
	default:
		errs = append(errs, fmt.Errorf("output.kafka.acks: %q is not one of all, leader, none", c.Acks))
	}
	if _, err := kafkaCodec(c.Compression); err != nil {
		errs = append(errs, err)
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		errs = append(errs, fmt.Errorf("output.kafka.queue_size: %d is out of range [1, 10000000]", c.QueueSize))
	}
	if c.DeliveryTimeout < time.Second {
		errs = append(errs, fmt.Errorf("output.kafka.delivery_timeout: %v is below 1s", c.DeliveryTimeout))
	}
	switch c.SASL.Mechanism {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("output.kafka.sasl.username: empty with mechanism %s", c.SASL.Mechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("output.kafka.sasl.mechanism: %q is not one of plain, scram-sha-256, scram-sha-512 (or empty)", c.SASL.Mechanism))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("output.kafka.tls.cert_file, output.kafka.tls.key_file: give both or neither"))
	}
	return errors.Join(errs...)
}

func kafkaCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("output.kafka.compression: %q is not one of none, gzip, snappy, lz4, zstd", name)
}

// KafkaClientOpts are the client options cfg asks for, shared by the
// producer and the correlator's consumer: brokers, TLS, SASL.
func KafkaClientOpts(cfg KafkaConfig) ([]kgo.Opt, error) {
	var brokers []string
	for _, b := range cfg.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("icmpids")}
	if cfg.TLS.Enabled {
		conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLS.ServerName}
		if cfg.TLS.CAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("output.kafka.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("output.kafka.tls.ca_file: %s holds no PEM certificate", cfg.TLS.CAFile)
			}
			conf.RootCAs = pool
		}
		if cfg.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("output.kafka.tls.cert_file, output.kafka.tls.key_file: %w", err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(conf))
	}
	var mech sasl.Mechanism
	switch s := cfg.SASL; s.Mechanism {
	case "plain":
		mech = plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
	case "scram-sha-256":
		mech = scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	case "scram-sha-512":
		mech = scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// KafkaOptions are the run-time choices of a Kafka sink that are not
// configuration.
type KafkaOptions struct {
	// Block makes Emit wait for room while the client holds queue_size
	// records (a replay loses nothing) instead of refusing the record (a
	// live sensor never waits).
	Block bool
	// Stop, when done, ends a blocking Emit's wait (the record is dropped
	// and counted); later Emits never wait (a full client refuses). It
	// never fails a record already taken: Close bounds their delivery.
	// Nil never stops.
	Stop context.Context
	// Log receives the sink's messages; nil discards them.
	Log *logrus.Entry
	// SeqBase is added to the per-sensor event counter to make event_seq:
	// 0 numbers the events 1, 2, 3, …; a live sensor passes its start
	// time in microseconds, so that a restarted sensor's numbers stay
	// above the last run's.
	SeqBase uint64
}

// Kafka is a detector.Sink that produces every event's EVE JSON (with
// alert.context.event_seq, the sensor's sequence number) to a Kafka topic,
// and the sensor's fleet observations to another (see Observe).
//
// It uses franz-go's producer: the client holds up to queue_size records
// and sends them in batches; with acks "all" it is idempotent, so a
// record retried after a lost acknowledgement is written once and each
// partition keeps the order records were produced in. While the brokers
// are away the records wait; live mode refuses a record that finds the
// client full (queue_full) and never waits; records a broker finally
// rejects, or that wait longer than delivery_timeout, are counted
// (delivery_failed). Delivery is at least once across sensor restarts
// (what a dying sensor had sent but not seen acknowledged may be written
// by the broker): event_seq lets a consumer drop repeats.
type Kafka struct {
	cfg     KafkaConfig
	cl      *kgo.Client
	block   bool
	stop    context.Context
	log     *logrus.Entry
	meta    atomic.Pointer[Meta]
	seqBase uint64

	mu      sync.Mutex // orders Emit: sequence numbers in produce order
	seq     uint64
	closing bool

	sent, dropped, undelivered, rejected, obsSent, obsDropped atomic.Uint64
	connected, abandon, purging                               atomic.Bool
	lastReject, progress                                      atomic.Int64

	ctx       context.Context
	cancel    context.CancelFunc
	pingDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewKafka returns a Kafka sink for cfg. It fails on bad settings or
// unreadable TLS files, never because the brokers are unreachable (see
// Check).
func NewKafka(cfg KafkaConfig, opts KafkaOptions) (*Kafka, error) {
	if !cfg.Enabled() {
		return nil, errors.New("output.kafka.brokers: none given")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	k := &Kafka{cfg: cfg, block: opts.Block, stop: opts.Stop, seqBase: opts.SeqBase,
		log: log.WithField("kafka", strings.Join(cfg.Brokers, ",")), pingDone: make(chan struct{})}
	if k.stop == nil {
		k.stop = context.Background()
	}
	k.meta.Store(&Meta{})
	codec, _ := kafkaCodec(cfg.Compression)
	kopts, err := KafkaClientOpts(cfg)
	if err != nil {
		return nil, err
	}
	kopts = append(kopts,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(cfg.QueueSize),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RetryBackoffFn(func(n int) time.Duration { return min(100*time.Millisecond<<min(n, 5), 2*time.Second) }),
		kgo.WithHooks(kafkaHooks{k}),
		kgo.WithLogger(kafkaLogger{log.WithField("component", "kafka")}),
	)
	switch cfg.Acks {
	case "all":
		kopts = append(kopts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		kopts = append(kopts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		kopts = append(kopts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	if k.cl, err = kgo.NewClient(kopts...); err != nil {
		return nil, fmt.Errorf("output.kafka: %w", err)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	go k.ping()
	return k, nil
}

// kafkaPingEvery is how often the sink checks that a broker answers, for
// icmpids_output_connected when no record is being produced.
const kafkaPingEvery = 2 * time.Second

func (k *Kafka) ping() {
	defer close(k.pingDone)
	t := time.NewTicker(kafkaPingEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(k.ctx, kafkaPingEvery)
		err := k.cl.Ping(ctx)
		cancel()
		if k.ctx.Err() != nil {
			return
		}
		k.connected.Store(err == nil)
		k.watchdog()
		select {
		case <-t.C:
		case <-k.ctx.Done():
			return
		}
	}
}

// watchdog gives up the buffered records when none has been acknowledged
// for delivery_timeout. The client cannot time out records it has sent
// once to a broker that died (it cannot tell whether they were written,
// and the idempotent producer must not skip a sequence number): against a
// broker that came back without the topic they would wait for ever and
// fill the queue. Purging the topics fails them (delivery_failed).
func (k *Kafka) watchdog() {
	now := time.Now().UnixNano()
	if k.cl.BufferedProduceRecords() == 0 {
		k.progress.Store(now)
		return
	}
	last := k.progress.Load()
	if last == 0 || now-last < int64(k.cfg.DeliveryTimeout) {
		return
	}
	k.progress.Store(now)
	k.log.WithField("delivery_timeout", k.cfg.DeliveryTimeout).Warn("kafka: no record acknowledged for delivery_timeout: giving up the buffered records (counted as delivery_failed)")
	topics := []string{k.cfg.Topic}
	if k.cfg.ObservationsTopic != "" {
		topics = append(topics, k.cfg.ObservationsTopic)
	}
	k.cl.PurgeTopicsFromProducing(topics...)
}

// Client is the sink's Kafka client (the observation publisher shares it).
func (k *Kafka) Client() *kgo.Client { return k.cl }

// SetMeta sets what later events say of their sensor and input (see
// EVE.SetMeta).
func (k *Kafka) SetMeta(m Meta) { k.meta.Store(&m) }

// Check waits until a broker answers (a replay fails at once when none
// does).
func (k *Kafka) Check(ctx context.Context) error {
	if err := k.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka %s: %w", strings.Join(k.cfg.Brokers, ","), err)
	}
	k.connected.Store(true)
	return nil
}

// Emit implements detector.Sink (see Kafka).
func (k *Kafka) Emit(ev *detector.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		k.dropped.Add(1)
		return
	}
	k.seq++
	meta := k.meta.Load()
	rec := &kgo.Record{Value: AppendEVESeq(nil, ev, meta, k.seqBase+k.seq)}
	switch k.cfg.Key {
	case "attack_id":
		rec.Key = appendHex16(make([]byte, 0, 16), AttackID(meta.Host, ev))
	case "target":
		rec.Key = ev.Target.AppendTo(nil)
	}
	if k.block && k.stop.Err() == nil {
		// Stop may end the wait for room, but not the delivery of a
		// record once taken: franz-go fails a buffered record whose
		// produce context is done, and the end events of a shutdown
		// must reach the topic (Close bounds that wait).
		ctx, cancel := context.WithCancel(context.Background())
		unhook := context.AfterFunc(k.stop, cancel)
		k.cl.Produce(ctx, rec, k.promise)
		unhook()
		return
	}
	k.cl.TryProduce(context.Background(), rec, k.promise)
}

// Produce sends one record of another kind (an observation) to topic,
// never waiting: a full client refuses it (counted). It is for
// publishers that share the sink's client and its connection.
func (k *Kafka) Produce(topic string, key, value []byte) {
	rec := &kgo.Record{Topic: topic, Key: key, Value: value}
	k.cl.TryProduce(context.Background(), rec, func(_ *kgo.Record, err error) {
		if err != nil {
			k.obsDropped.Add(1)
			return
		}
		k.obsSent.Add(1)
	})
}

// ObservationStats returns how many observation records were delivered
// and lost.
func (k *Kafka) ObservationStats() (sent, lost uint64) { return k.obsSent.Load(), k.obsDropped.Load() }

// promise counts one EVE record's fate.
func (k *Kafka) promise(r *kgo.Record, err error) {
	switch {
	case err == nil:
		k.sent.Add(1)
		k.progress.Store(time.Now().UnixNano())
		k.connected.Store(true)
	case errors.Is(err, kgo.ErrMaxBuffered):
		k.dropped.Add(1)
	case k.abandon.Load() || errors.Is(err, kgo.ErrClientClosed):
		// Counted by Close, as what was still buffered.
		return
	case errors.Is(err, context.Canceled) && k.stop.Err() != nil:
		k.dropped.Add(1) // a replay's wait ended by a signal
	default:
		k.rejected.Add(1)
		if errors.Is(err, kerr.UnknownTopicID) && k.purging.CompareAndSwap(false, true) {
			// The topic was deleted and made anew (a broker that lost
			// its data): the client keeps failing records for the old
			// topic id until the topic is purged; later records go to
			// the new topic. Not from the promise: it must not block
			// on the client.
			go func() {
				k.cl.PurgeTopicsFromProducing(r.Topic)
				k.purging.Store(false)
			}()
		}
		now := time.Now().UnixNano()
		if last := k.lastReject.Load(); now-last > int64(dropReportEvery) && k.lastReject.CompareAndSwap(last, now) {
			k.log.WithError(err).Warn("kafka: a record was given up (counted as delivery_failed)")
		}
	}
}

// Stats returns the sink's figures.
func (k *Kafka) Stats() SinkStats {
	return SinkStats{
		Name: "kafka", Queued: int(k.cl.BufferedProduceRecords()) - int(k.undelivered.Load()), Capacity: k.cfg.QueueSize,
		Sent: k.sent.Load(), Dropped: k.dropped.Load(), Undelivered: k.undelivered.Load(),
		Rejected: k.rejected.Load(), Network: true, Connected: k.connected.Load(),
	}
}

// Close stops accepting events and waits until every buffered record is
// acknowledged or ctx is done; what is left then is given up, counted as
// undelivered and returned as an error. Later calls return the first
// call's result.
func (k *Kafka) Close(ctx context.Context) error {
	k.closeOnce.Do(func() {
		k.mu.Lock()
		k.closing = true
		k.mu.Unlock()
		err := k.cl.Flush(ctx)
		if err != nil {
			k.abandon.Store(true)
			k.undelivered.Store(uint64(k.cl.BufferedProduceRecords()))
		}
		k.cancel()
		<-k.pingDone
		k.cl.Close()
		k.connected.Store(false)
		if n := k.undelivered.Load(); n > 0 {
			k.log.WithField("undelivered", n).Error("kafka: closed before every event was acknowledged")
			k.closeErr = fmt.Errorf("kafka %s: %d events not delivered: %w", strings.Join(k.cfg.Brokers, ","), n, err)
		}
	})
	return k.closeErr
}

// kafkaHooks follow the client's connections for icmpids_output_connected.
type kafkaHooks struct{ k *Kafka }

func (h kafkaHooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.k.connected.Store(err == nil)
}

func (h kafkaHooks) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	h.k.connected.Store(true)
}

// kafkaLogger passes the client's warnings and errors to logrus.
type kafkaLogger struct{ log *logrus.Entry }

func (l kafkaLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kafkaLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	f := logrus.Fields{}
	for i := 0; i+1 < len(keyvals); i += 2 {
		f[fmt.Sprint(keyvals[i])] = keyvals[i+1]
	}
	e := l.log.WithFields(f)
	if level == kgo.LogLevelError {
		e.Error("kafka client: " + msg)
	} else {
		e.Debug("kafka client: " + msg)
	}
}
