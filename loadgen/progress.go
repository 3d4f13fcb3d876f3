package loadgen

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints a live line to Options.Progress: on a terminal (Options.ProgressLive)
// one line rewritten in place ('\r') every second, otherwise one plain line every
// plainEvery. Nothing when Options.Progress is nil.
type progress struct {
	w        io.Writer
	live     bool
	counts   func() (sent, delivered, errors int64)
	start    time.Time
	mu       sync.Mutex
	phase    string
	quit     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	printed  bool
}

const plainEvery = 5 * time.Second

func newProgress(o *Options, counts func() (sent, delivered, errors int64)) *progress {
	p := &progress{w: o.Progress, live: o.ProgressLive, counts: counts, start: time.Now(),
		phase: "setup", quit: make(chan struct{}), done: make(chan struct{})}
	if p.w == nil {
		close(p.done)
		return p
	}
	every := time.Second
	if !p.live {
		every = plainEvery
	}
	go p.loop(every)
	return p
}

func (p *progress) setPhase(s string) {
	p.mu.Lock()
	p.phase = s
	p.mu.Unlock()
}

func (p *progress) loop(every time.Duration) {
	defer close(p.done)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastDel int64
	last := time.Now()
	for {
		select {
		case <-p.quit:
			if p.live && p.printed {
				fmt.Fprintln(p.w) // leave the last state on screen, end its line
			}
			return
		case now := <-t.C:
			s, d, e := p.counts()
			rate := float64(d-lastDel) / now.Sub(last).Seconds()
			lastDel, last = d, now
			p.mu.Lock()
			phase := p.phase
			p.mu.Unlock()
			line := progressLine(now.Sub(p.start), phase, s, d, rate, e)
			if p.live {
				fmt.Fprintf(p.w, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(p.w, line)
			}
			p.printed = true
		}
	}
}

// progressLine formats one progress report.
func progressLine(elapsed time.Duration, phase string, sent, delivered int64, rate float64, errors int64) string {
	return fmt.Sprintf("[%6.1fs %-6s] sent %s  delivered %s  %s msgs/s  errors %d",
		elapsed.Seconds(), phase, thousands(sent), thousands(delivered), thousands(int64(rate+0.5)), errors)
}

// stop ends the reports; safe to call more than once.
func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

// thousands formats n with thousands separators: 1234567 -> "1,234,567".
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := fmt.Sprint(n)
	if len(s) <= 3 {
		return s
	}
	b := make([]byte, 0, len(s)+len(s)/3)
	lead := len(s) % 3
	if lead > 0 {
		b = append(b, s[:lead]...)
	}
	for i := lead; i < len(s); i += 3 {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = append(b, s[i:i+3]...)
	}
	return string(b)
}
