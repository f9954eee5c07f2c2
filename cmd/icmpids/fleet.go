package main

import (
	"context"
	"fmt"
	"time"

	"github.com/icmpids/icmpids/detector"
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
