package main

import (
	"github.com/icmpids/icmpids/detector"
	"github.com/icmpids/icmpids/output/hook"
)

// addHooks makes output.exec and output.webhook when they are configured
// and registers them to be closed with the sensor. A live sensor's hooks
// sit behind a queue that drops its oldest event when full (counted); a
// replay's deliver before the next event is processed, so a replay
// delivers every alert, and stop on a signal.
func (s *sensor) addHooks(cfg Config, live bool) ([]detector.Sink, error) {
	opts := func(name string, size int) hook.Options {
		o := hook.Options{Live: live, QueueSize: size, Log: s.log.WithField("component", name)}
		if !live {
			o.Stop = s.stop
		}
		return o
	}
	var sinks []detector.Sink
	add := func(o *hook.Output) {
		s.hooks = append(s.hooks, o)
		s.metas = append(s.metas, o.SetMeta)
		s.closers = append(s.closers, o.Close)
		sinks = append(sinks, o)
	}
	if ec := cfg.Output.Exec; len(ec.Command) > 0 {
		o, err := hook.NewExec(ec, opts("exec", ec.QueueSize))
		if err != nil {
			return nil, configError{err}
		}
		add(o)
	}
	if wc := cfg.Output.Webhook; wc.URL != "" {
		o, err := hook.NewWebhook(wc, opts("webhook", wc.QueueSize))
		if err != nil {
			return nil, configError{err}
		}
		add(o)
	}
	return sinks, nil
}
