package loadgen

import "context"

// mixedScenario runs pubsub and rpc at once on the same router, each with its own
// sessions: Publishers/Subscribers/Topics for the pub/sub share, Callers/Callees/Inflight
// for the RPC share. Rate (if any) is split evenly between the two; Count applies to
// each (the window ends when both made Count sends). The Result holds both in Parts;
// its own counters are their sums, its CPU figures cover the run.
type mixedScenario struct{}

func (mixedScenario) Name() string { return "mixed" }

func (mixedScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	ps := newPubsubPart(o, o.Rate/2)
	rp := newRPCPart(o, o.Rate/2)
	parts, w, err := drive(ctx, o, ps, rp)
	if err != nil {
		return nil, err
	}
	res := newResult("mixed", o)
	res.fillURLs(o)
	res.Size = o.Size
	res.Publishers, res.Subscribers, res.Topics = parts[0].Publishers, parts[0].Subscribers, parts[0].Topics
	res.Callers, res.Callees, res.Inflight = parts[1].Callers, parts[1].Callees, parts[1].Inflight
	res.Ack = o.Ack
	for _, p := range parts {
		res.Sent += p.Sent
		res.Delivered += p.Delivered
		res.Lost += p.Lost
		res.Frames += p.Frames
		res.Writes += p.Writes
		res.Errors += p.Errors
		for _, e := range p.ErrorSamples {
			res.ErrorSamples = appendSample(res.ErrorSamples, e)
		}
		p.Elapsed = w.elapsed()
		p.rates()
	}
	res.Parts = parts
	var errs errorLog
	w.fill(res, &errs)
	res.addErrors(&errs)
	return res, nil
}
