package loadgen

import (
	"sync/atomic"
	"time"
)

// pacer is one sender's schedule at a fixed rate: send k is due at start + k*interval.
// A sender asks how many sends are due now and sends them back to back (in one batch),
// so that a high rate costs no sleep per message. When the sender falls more than
// maxBacklog behind (the router or loadgen stalled), the older sends are dropped from the
// schedule rather than sent in a burst, and counted in skipped.
type pacer struct {
	interval time.Duration // 0: no pacing, everything is always due
	start    time.Time
	next     int64 // index of the next send
	skipped  int64 // sends dropped from the schedule by the backlog limit
}

const maxBacklog = time.Second

// newPacer paces sender i of senders that share the total rate (per second); the
// senders' schedules are staggered by interval/senders so that they do not send in step.
func newPacer(rate float64, senders, i int, start time.Time) *pacer {
	p := &pacer{start: start}
	if rate > 0 && senders > 0 {
		p.interval = time.Duration(float64(senders) / rate * float64(time.Second))
		p.interval = max(p.interval, 1)
		p.start = start.Add(p.interval * time.Duration(i) / time.Duration(senders))
	}
	return p
}

// due returns how many sends are due at now (at most limit) and, when none is, how long
// until the next one. The caller reports the sends it made with took.
func (p *pacer) due(now time.Time, limit int64) (n int64, wait time.Duration) {
	if p.interval <= 0 {
		return limit, 0
	}
	el := now.Sub(p.start)
	if el < 0 {
		return 0, -el
	}
	slots := int64(el/p.interval) + 1 // sends 0..slots-1 are due
	if backlog := slots - p.next; backlog > 1 && time.Duration(backlog-1)*p.interval > maxBacklog {
		keep := int64(maxBacklog / p.interval)
		p.skipped += backlog - keep
		p.next = slots - keep
	}
	if n = slots - p.next; n > 0 {
		return min(n, limit), 0
	}
	return 0, p.start.Add(time.Duration(p.next) * p.interval).Sub(now)
}

// took records n sends made.
func (p *pacer) took(n int64) { p.next += n }

// waitDue blocks until at least one send is due (or stop is set) and returns how many
// are due, at most limit.
func (p *pacer) waitDue(limit int64, stop *atomic.Bool) int64 {
	for !stop.Load() {
		n, wait := p.due(time.Now(), limit)
		if n > 0 {
			return n
		}
		time.Sleep(min(wait, 100*time.Millisecond))
	}
	return 0
}
