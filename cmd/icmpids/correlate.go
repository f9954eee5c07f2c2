package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/fleet"
	"github.com/icmpids/icmpids/output"
	"github.com/icmpids/icmpids/rules"
)

func newCorrelateCmd(a *app) *cobra.Command {
	var untilIdle time.Duration
	cmd := &cobra.Command{
		Use:   "correlate --kafka BROKERS",
		Short: "Sum the sensors' observations from Kafka and raise the attacks no single sensor sees",
		Long: `Consume the fleet observations the sensors publish (output.kafka.observations_topic,
default icmpids.obs) in the consumer group fleet.group, so that several
correlators split the partitions. Every sensor's record of a prefix is
summed per fleet.interval in event (packet) time; an interval is judged once
the newest interval seen is fleet.lateness past it. The sums go through the
same rules (icmp_carpet_flood, icmp_flood, blacknurse, frag_flood) with the
same thresholds and the same attack tracker as on a sensor: one start, rate-limited updates, one end.
Fleet alerts carry alert.context.attack.sensors ([{name, pps, share}]) and
host = this correlator's sensor_name; attack ids depend on the rule, the
prefix and the attack's start alone, so a correlator restarted on its
committed offsets raises the same ids: offsets are committed only up to
the records of intervals not yet judged and, while a fleet attack is open,
up to 3 s before its start (a restart reads them again); at --until-idle's
end, all of them. A prefix a sensor reports an attack on itself is not
raised again by the fleet.

Alerts go where a sensor's go: stdout (--format), --eve, --syslog, and
output.kafka.topic. --until-idle D exits once no record has come for D of
wall time since the correlator joined its group (batch use; one that has
not joined within max(D, 10s) exits too); SIGTERM closes the open attacks (end_reason
shutdown), flushes their end events to the outputs for at most 3 s (what
is left is counted as undelivered) and exits.`,
		Example: `  icmpids correlate --kafka kafka1:9092,kafka2:9092 --eve /var/log/icmpids/fleet.json
  icmpids correlate --kafka 127.0.0.1:9092 --until-idle 5s --format eve`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.startupDone() // a service whose start-up is its connection
			return a.correlate(cmd.Context(), untilIdle)
		},
	}
	cmd.Flags().DurationVar(&untilIdle, "until-idle", 0, "exit after this much wall time without a new record once in the group (0: run until a signal)")
	return cmd
}

// fleetRule gives a FleetJudge rule the fleet's context on its events.
type fleetRule struct {
	detector.Rule
	judge detector.FleetJudge
	c     **fleet.Correlator
}

// JudgeFleet implements detector.FleetJudge.
func (r fleetRule) JudgeFleet(o *detector.Observation, i int, rep detector.Reporter) {
	r.judge.JudgeFleet(o, i, rep)
}

// Describe implements detector.Describer: the rule's context, then the
// sensors'.
func (r fleetRule) Describe(target netip.Addr, extra map[string]any) {
	if d, ok := r.Rule.(detector.Describer); ok {
		d.Describe(target, extra)
	}
	(*r.c).Describe(r.Info().Name, target, extra)
}

func (a *app) correlate(ctx context.Context, untilIdle time.Duration) error {
	cfg, err := loadConfig(a.v, a.configPath)
	if err != nil {
		return err
	}
	if !cfg.Output.Kafka.Enabled() {
		return usageErrorf("correlate: --kafka (output.kafka.brokers) is required")
	}
	if untilIdle < 0 {
		return usageErrorf("--until-idle %v must not be negative", untilIdle)
	}
	topic := cfg.Output.Kafka.ObservationsTopic
	if topic == "" {
		return usageErrorf("correlate: output.kafka.observations_topic is empty")
	}
	log := newLogger(cfg.LogLevel, a.stderr)
	// The correlator's engine publishes no observations of its own (it
	// would read them back), and is one engine: its input is sums.
	cfg.Output.Kafka.ObservationsTopic = ""
	cfg.Engine.Workers = 1
	commits := newFleetCommits(topic)
	s, err := newSensor(ctx, cfg, a.stdout, log, false, sensorTap{sink: commits})
	if err != nil {
		return err
	}
	s.grace = shutdownGrace
	eng, ok := s.engine.(*detector.Engine)
	if !ok {
		return fmt.Errorf("correlate: engine is %T", s.engine)
	}
	rs, err := rules.Enabled(cfg.Rules)
	if err != nil {
		return configError{err}
	}
	var c *fleet.Correlator
	var judges []detector.Rule
	for _, r := range rs {
		if j, ok := r.(detector.FleetJudge); ok {
			judges = append(judges, fleetRule{Rule: r, judge: j, c: &c})
		}
	}
	eng.SetRules(judges...)
	c = fleet.New(eng, cfg.Fleet.Lateness, cfg.Fleet.MaxSkew)

	opts, err := output.KafkaClientOpts(cfg.Output.Kafka)
	if err != nil {
		return configError{err}
	}
	opts = append(opts, kgo.ConsumerGroup(cfg.Fleet.Group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.OnPartitionsAssigned(commits.assigned), kgo.OnPartitionsRevoked(commits.revoked), kgo.OnPartitionsLost(commits.revoked),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	opts = append(opts, a.consumerOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		s.close(detector.EndShutdown)
		return fmt.Errorf("correlate: %w", err)
	}
	log.WithFields(logrus.Fields{"topic": topic, "group": cfg.Fleet.Group}).Info("correlating the fleet's observations")
	reason, err := consumeFleet(ctx, cl, c, commits, untilIdle, log)
	cl.Close()
	cerr := s.close(reason)
	s.logSummary("correlate done")
	log.WithFields(logrus.Fields{"records": c.Records, "late": c.Late, "ahead": c.Ahead, "evicted": c.Evicted,
		"keys_cleared": c.KeysCleared, "reported_by_a_sensor": c.Suppressed, "committed_early": commits.GaveUp}).Info("fleet observations")
	return errors.Join(err, cerr)
}

// consumeFleet feeds the records to c until ctx is done (the open attacks
// end as shutdown) or, with untilIdle, no record came for untilIdle since
// the group gave the correlator its partitions, or it got none within
// max(untilIdle, joinWait) (the open attacks end as input_end). It returns the end reason. c judges once the
// consumer has caught up with every partition it fetched (a fetch reached
// the partition's high watermark), or after a poll that brought nothing:
// a backlog larger than one fetch is summed whole, in packet time, before
// any of its intervals is judged. Offsets are committed as
// commits decides (up to the open attacks' records: a restart raises them
// again with the same ids), and at the input's end all of them.
func consumeFleet(ctx context.Context, cl *kgo.Client, c *fleet.Correlator, commits *fleetCommits, untilIdle time.Duration, log *logrus.Logger) (string, error) {
	var o detector.Observation
	last := time.Now()
	bad := 0
	backlog := false
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			rec, err := fleet.Decode(r.Value, &o)
			if err != nil {
				commits.polled(r, math.MinInt64)
				if bad++; bad <= 10 {
					log.WithError(err).WithField("offset", r.Offset).Warn("correlate: record skipped")
				}
				return
			}
			commits.polled(r, (o.FirstSlot+int64(o.Slots))*int64(o.SlotWidth))
			c.Add(rec.Sensor, rec.AttackID, &o)
		})
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				log.WithError(err).WithFields(logrus.Fields{"topic": t, "partition": p}).Warn("correlate: fetching")
			}
		})
		fs.EachPartition(commits.fetched)
		if n > 0 {
			last = time.Now()
		}
		switch {
		case n > 0 && !commits.caughtUp():
			// A backlog (sensors' records one sensor after another, a
			// correlator started late): read it all before judging, so
			// that a sensor's records further on in the topic are not
			// late. The correlator's caps bound what it holds.
			backlog = true
		case n > 0 || backlog:
			// Caught up, or a second without records after a backlog.
			backlog = false
			c.Flush(false)
			commits.commit(cl, c.Judged(), false, log)
		}
		if ctx.Err() != nil {
			c.Flush(true)
			commits.commit(cl, c.Judged(), true, log)
			return detector.EndShutdown, nil
		}
		if untilIdle > 0 && idle(last, commits.joinedAt(), untilIdle) {
			c.Flush(true)
			commits.stopInflight()
			cctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			err := cl.CommitUncommittedOffsets(cctx)
			cancel()
			if err != nil {
				log.WithError(err).Warn("correlate: committing offsets")
			}
			return detector.EndInputEnd, nil
		}
	}
}

// joinWait is how long --until-idle waits for the group to give the
// correlator its partitions before it counts idle time from its start.
const joinWait = 10 * time.Second

// idle tells whether --until-idle's d has passed: d without records since
// the later of the last record and the group's assignment, or, before any
// assignment, max(d, joinWait) since last (the start).
func idle(last, joined time.Time, d time.Duration) bool {
	if joined.IsZero() {
		return time.Since(last) >= max(d, joinWait)
	}
	if joined.After(last) {
		last = joined
	}
	return time.Since(last) >= d
}
