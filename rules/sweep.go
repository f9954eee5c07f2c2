package rules

import "time"

// sweepClock spaces out a rule's periodic table sweeps in packet time:
// sweeps visit whole tables, so they run every so often, not every tick.
type sweepClock struct{ next time.Time }

// due tells whether a sweep is due at now and, if so, schedules the next
// one every later.
func (c *sweepClock) due(now time.Time, every time.Duration) bool {
	if now.Before(c.next) {
		return false
	}
	c.next = now.Add(every)
	return true
}
