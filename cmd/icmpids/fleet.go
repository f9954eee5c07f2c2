package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/fleet"
	"github.com/icmpids/icmpids/output"
)

// fleetCheckTimeout bounds a replay's first contact with Redis or Kafka.
const fleetCheckTimeout = 10 * time.Second

// fleetBlockTimeout is how long a replay's Redis sink waits for room while
// Redis takes nothing.
const fleetBlockTimeout = time.Minute

// fleetOutputs are the outputs that bring several sensors' events
// together: Redis (output.redis) and Kafka (output.kafka).
type fleetOutputs struct {
	redis *output.Redis
	kafka *output.Kafka
	// publish sends an engine's fleet observations (nil: none).
	publish func(o *detector.Observation)
	cfg     FleetConfig
}

// observe makes eng publish its fleet observations, when the sensor
// publishes them (output.kafka.observations_topic).
func (f *fleetOutputs) observe(eng *detector.Engine) {
	if f.publish != nil {
		eng.SetFleet(f.cfg.Interval, f.cfg.ReportFloor, f.publish)
	}
}

// FleetConfig configures the fleet: what a sensor publishes to
// output.kafka.observations_topic and how `icmpids correlate` sums it.
type FleetConfig struct {
	// Interval is how often (packet time) a sensor publishes its
	// observations; at most the rules' window (1 s), which a record's
	// buckets cover.
	Interval time.Duration `mapstructure:"interval"`
	// ReportFloor is the least rate, as a fraction of a rule's start
	// level, of a key a sensor publishes.
	ReportFloor float64 `mapstructure:"report_floor"`
	// Lateness is how long (event time) the correlator waits for sensors
	// behind the newest before it judges an interval.
	Lateness time.Duration `mapstructure:"lateness"`
	// MaxSkew is how far (event time) past the newest interval seen one
	// sensor's records may be and still move the correlator's clock; a
	// record further ahead waits until a second sensor's records come
	// within MaxSkew of it (a wrong clock or a forged record alone ends
	// nothing early).
	MaxSkew time.Duration `mapstructure:"max_skew"`
	// Group is the correlators' Kafka consumer group.
	Group string `mapstructure:"group"`
}

func defaultFleetConfig() FleetConfig {
	return FleetConfig{Interval: time.Second, ReportFloor: 0.125, Lateness: 2 * time.Second, MaxSkew: 10 * time.Second, Group: "icmpids-correlate"}
}

func (c FleetConfig) validate() error {
	var errs []error
	if c.Interval < 100*time.Millisecond || c.Interval > time.Second || c.Interval%(100*time.Millisecond) != 0 {
		errs = append(errs, fmt.Errorf("fleet.interval: %v must be a multiple of 100ms in [100ms, 1s] (the rules' window buckets)", c.Interval))
	}
	if c.ReportFloor <= 0 || c.ReportFloor > 1 {
		errs = append(errs, fmt.Errorf("fleet.report_floor: %v is out of range (0, 1]", c.ReportFloor))
	}
	if c.Lateness < 0 || c.Lateness > time.Hour {
		errs = append(errs, fmt.Errorf("fleet.lateness: %v is out of range [0, 1h]", c.Lateness))
	}
	if c.MaxSkew < time.Second || c.MaxSkew > 24*time.Hour {
		errs = append(errs, fmt.Errorf("fleet.max_skew: %v is out of range [1s, 24h]", c.MaxSkew))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("fleet.group: must not be empty"))
	}
	return errors.Join(errs...)
}

// addFleetOutputs makes the Redis output when it is configured and
// registers it to be closed with the sensor. A live sensor's sink never
// waits (a full queue drops and counts); a replay's waits for room and
// first checks that the server answers, so a replay to a server that is
// down fails at once.
func (s *sensor) addFleetOutputs(cfg Config, live bool) ([]detector.Sink, error) {
	var sinks []detector.Sink
	if rc := cfg.Output.Redis; rc.Server != "" {
		r, err := output.NewRedis(rc, output.RedisOptions{
			Block: !live, BlockTimeout: fleetBlockTimeout, Stop: s.stop,
			Log: s.log.WithField("component", "redis"),
		})
		if err != nil {
			return nil, configError{err}
		}
		if !live {
			ctx, cancel := context.WithTimeout(s.stop, fleetCheckTimeout)
			err := r.Check(ctx)
			cancel()
			if err != nil {
				r.Close(ctx)
				return nil, fmt.Errorf("output.redis: %w", err)
			}
		}
		s.fleet.redis = r
		s.metas = append(s.metas, r.SetMeta)
		s.closers = append(s.closers, r.Close)
		sinks = append(sinks, r)
	}
	if kc := cfg.Output.Kafka; kc.Enabled() {
		opts := output.KafkaOptions{Block: !live, Stop: s.stop, Log: s.log.WithField("component", "kafka")}
		if live {
			// event_seq stays above the last run's after a restart.
			opts.SeqBase = uint64(time.Now().UnixMicro())
		}
		k, err := output.NewKafka(kc, opts)
		if err != nil {
			return nil, configError{err}
		}
		if !live {
			ctx, cancel := context.WithTimeout(s.stop, fleetCheckTimeout)
			err := k.Check(ctx)
			cancel()
			if err != nil {
				k.Close(ctx)
				return nil, fmt.Errorf("output.kafka: %w", err)
			}
		}
		s.fleet.kafka = k
		if topic := kc.ObservationsTopic; topic != "" {
			name := sensorName(cfg)
			s.fleet.cfg = cfg.Fleet
			s.fleet.publish = func(o *detector.Observation) {
				key, value, err := fleet.Encode(name, o)
				if err == nil {
					k.Produce(topic, key, value)
				}
			}
		}
		s.metas = append(s.metas, k.SetMeta)
		s.closers = append(s.closers, k.Close)
		sinks = append(sinks, k)
	}
	return sinks, nil
}

// stats returns the fleet outputs' delivery figures.
func (f *fleetOutputs) stats() []output.SinkStats {
	var st []output.SinkStats
	if f.redis != nil {
		st = append(st, f.redis.Stats())
	}
	if f.kafka != nil {
		st = append(st, f.kafka.Stats())
	}
	return st
}
