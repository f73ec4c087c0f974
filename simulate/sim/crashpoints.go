package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// maxCrashPoints bounds an enumeration: a workload with more operations
// than this is a scenario bug.
const maxCrashPoints = 20_000

// runEnumeration counts the filesystem operations of the scenario's
// workload, then runs it once per operation and crash mode, crashed at
// that operation; each run recovers, drains and is checked like any other.
// The digest covers every sub-run's digest in order.
func runEnumeration(sc Scenario, seed uint64, opts Options) Result {
	dryOpts := opts
	dryOpts.Trace = nil
	dry := newDryRun(sc, seed, dryOpts)
	total := dry.workloadOps
	agg := dry.res
	agg.Scenario, agg.Seed = sc.Name, seed
	tr := newTracer(nil)
	tr.line("enumerate %s seed %d: %d operations, %d modes", sc.Name, seed, total, len(sc.Enumerate))
	if total > maxCrashPoints {
		agg.Violations = append(agg.Violations, Violation{Invariant: "enumeration", Detail: fmt.Sprintf("%d operations: more than %d", total, maxCrashPoints)})
		agg.ViolationsTotal++
		total = maxCrashPoints
	}
	for k := 1; k <= total; k++ {
		for _, m := range sc.Enumerate {
			sub := opts
			sub.crashAtOp, sub.crashKind, sub.tearSeed = k, m.Kind, tearSeed(seed, m.Tear)
			if opts.Trace != nil {
				fmt.Fprintf(opts.Trace, "== crash point %d/%d: %s (tear %q)\n", k, total, m.Kind, m.Tear)
			}
			r := runOnce(sc, seed, sub)
			tr.line("point %d %s %s: %s", k, m.Kind, m.Tear, r.Digest)
			merge(&agg, r, fmt.Sprintf("crash at op %d/%d (%s, tear %q)", k, total, m.Kind, m.Tear))
			agg.CrashPoints++
		}
	}
	agg.Digest = tr.digest()
	return agg
}

// newDryRun runs the workload without a crash point and returns its engine.
func newDryRun(sc Scenario, seed uint64, opts Options) *Engine {
	var e *Engine
	opts.tearSeed = tearSeed(seed, "dry")
	res := runOnceEngine(sc, seed, opts, func(x *Engine) { e = x })
	e.res = res
	return e
}

// tearSeed derives a CrashFS seed (non-zero) from the run's seed and a name.
func tearSeed(seed uint64, name string) int64 {
	h := sha256.Sum256(fmt.Appendf(nil, "tear\x00%d\x00%s", seed, name))
	return int64(binary.LittleEndian.Uint64(h[:])>>1) | 1
}

// merge adds a sub-run's counts and violations to the aggregate.
func merge(agg *Result, r Result, where string) {
	agg.Steps += r.Steps
	agg.Records += r.Records
	agg.Rejected += r.Rejected
	agg.Delivered += r.Delivered
	agg.Redelivered += r.Redelivered
	agg.LostToCrash += r.LostToCrash
	agg.Crashes += r.Crashes
	agg.Restarts += r.Restarts
	agg.FaultsFired += r.FaultsFired
	for k := range agg.FaultsByKind {
		for j := range agg.FaultsByKind[k] {
			agg.FaultsByKind[k][j] += r.FaultsByKind[k][j]
		}
	}
	agg.VirtualTime += r.VirtualTime
	for i := range agg.Dropped {
		agg.Dropped[i] += r.Dropped[i]
	}
	agg.ViolationsTotal += r.ViolationsTotal
	agg.Notes = append(agg.Notes, r.Notes[:min(len(r.Notes), maxViolations-len(agg.Notes))]...)
	for _, v := range r.Violations {
		if len(agg.Violations) < maxViolations {
			v.Detail = where + ": " + v.Detail
			agg.Violations = append(agg.Violations, v)
		}
	}
}
