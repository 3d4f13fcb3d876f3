package readbatch

import (
	"sync"
	"sync/atomic"
	"testing"
)

// target is a send target whose queue is a counter: Flush takes everything queued.
type target struct {
	m       Mark
	queued  atomic.Int64
	flushed atomic.Int64
}

func (t *target) send() {
	if t.queued.Add(1) == 1 {
		Defer(&t.m)
	}
}

func (t *target) flush() {
	n := t.queued.Swap(0)
	t.flushed.Add(n)
}

// TestNothingLeftBehind: goroutines in and out of batches send to shared targets; when
// they are done, every send has been flushed (the Defer/End protocol loses none).
func TestNothingLeftBehind(t *testing.T) {
	ts := make([]*target, 8)
	for i := range ts {
		ts[i] = &target{}
		ts[i].m.Init(ts[i].flush)
	}
	const workers, rounds = 8, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				batch := (w+r)%3 != 0
				if batch {
					Begin()
				}
				for k := range 3 {
					ts[(w*5+r*3+k)%len(ts)].send()
				}
				if batch {
					if (w+r)%2 == 0 {
						End()
					} else if Leave() {
						Flush() // what an event loop does at the end of its round
					}
				}
			}
		})
	}
	wg.Wait()
	ts[0].send() // no batch open: flushed at once
	var sent, flushed int64
	for _, x := range ts {
		sent += x.queued.Load() + x.flushed.Load()
		flushed += x.flushed.Load()
	}
	if want := int64(workers*rounds*3 + 1); sent != want {
		t.Fatalf("counted %d sends, want %d", sent, want)
	}
	if flushed != sent {
		t.Fatalf("%d of %d sends never flushed", sent-flushed, sent)
	}
	if Open() {
		t.Fatal("a batch is still open")
	}
}
