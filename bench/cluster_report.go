package bench

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// ClusterRatio is the cluster against the single node in one scenario of one run.
type ClusterRatio struct {
	// CPUPerMsg: cluster CPU per message (summed over every process) / single-node CPU
	// per message (above 1: the cluster costs more per message; the goal is at most 1.3).
	CPUPerMsg float64
	// Throughput: cluster msgs/s / single-node msgs/s.
	Throughput float64
}

// ClusterRatio returns cluster/single for CPU per message and throughput; a figure is
// NaN when either side lacks it.
func (r Run) ClusterRatio() ClusterRatio {
	q := ClusterRatio{CPUPerMsg: math.NaN(), Throughput: math.NaN()}
	if !r.Switchyard.OK() || !r.Cluster.OK() {
		return q
	}
	s, c := r.Switchyard.Result, r.Cluster.Result
	q.Throughput = ratio(c.MsgsPerSec, s.MsgsPerSec)
	q.CPUPerMsg = ratio(cpuPerMsg(c), cpuPerMsg(s))
	return q
}

func cpuPerMsg(r *loadgen.Result) float64 {
	if r == nil || r.Router == nil {
		return 0
	}
	return r.Router.CPUPerMsgUs
}

// roleCPUPerMsg splits a cluster's CPU per message between its proxies and its routers
// (by node name); ok is false when the outcome does not say which pid is which node.
func roleCPUPerMsg(o *Outcome) (proxies, routers float64, ok bool) {
	r := o.Result
	if r.Router == nil || len(r.Router.Processes) == 0 || len(o.Nodes) == 0 || r.Delivered <= 0 {
		return 0, 0, false
	}
	role := map[int]string{}
	for _, n := range o.Nodes {
		role[n.PID] = n.Name
	}
	for _, p := range r.Router.Processes {
		us := p.CPUSeconds / float64(r.Delivered) * 1e6
		switch name := role[p.PID]; {
		case strings.HasPrefix(name, "proxy"):
			proxies += us
		case strings.HasPrefix(name, "router"):
			routers += us
		default:
			return 0, 0, false
		}
	}
	return proxies, routers, true
}

// WriteClusterTable writes the Markdown table of the cluster runs beside the single
// node's of the same run, with the cluster/single ratios; nothing when no scenario ran
// on a cluster.
func WriteClusterTable(w io.Writer, res *Results) {
	if res.Cluster == "" {
		return
	}
	row := func(cells ...string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
	row("scenario", "single msgs/s", "cluster msgs/s", "single p99", "cluster p99", "single CPU/msg",
		"cluster CPU/msg", "proxies + routers", "ratio CPU/msg", "ratio msgs/s", "cluster errors/lost")
	row("---", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:")
	for _, r := range res.Runs {
		if r.Cluster == nil {
			continue
		}
		single := []string{why(r.Switchyard), "", ""}
		if r.Switchyard.OK() {
			s := r.Switchyard.Result
			single = []string{Count(s.MsgsPerSec), Micros(p99(s)), cpuMicros(cpuPerMsg(s))}
		}
		if !r.Cluster.OK() {
			row(r.Scenario, single[0], why(r.Cluster), single[1], "", single[2], "", "", "", "", "")
			continue
		}
		c := r.Cluster.Result
		split := "–"
		if px, rt, ok := roleCPUPerMsg(r.Cluster); ok {
			split = fmt.Sprintf("%.2f + %.2f µs", px, rt)
		}
		rate := Count(c.MsgsPerSec)
		if c.Scenario == "connect" {
			rate += " joins"
		}
		q := r.ClusterRatio()
		row(r.Scenario, single[0], rate, single[1], Micros(p99(c)), single[2], cpuMicros(cpuPerMsg(c)), split,
			Times(q.CPUPerMsg), Times(q.Throughput), fmt.Sprintf("%d/%d", c.Errors, c.Lost))
	}
}

// cpuMicros formats CPU per message with two decimals below 10 µs (the ratios of small
// figures need them), else as Micros.
func cpuMicros(us float64) string {
	if us > 0 && us < 10 {
		return fmt.Sprintf("%.2f µs", us)
	}
	return Micros(us)
}
