package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// row is one line of the final table.
type row struct {
	phase, figure, baseline, target, verdict string
}

// note adds a line printed under the table.
func (e *env) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// printTable writes the results.
func (e *env) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tfigure\tbaseline (same run)\tratio / target\tverdict")
	for _, r := range e.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.phase, r.figure, r.baseline, r.target, r.verdict)
	}
	tw.Flush()
	if len(e.notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range e.notes {
		fmt.Fprintln(w, "note", n)
	}
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// ratePair formats records/s and MB/s (10^6 record bytes) of a rate.
func ratePair(recordsPerSec float64, size int) string {
	return fmt.Sprintf("%s rec/s, %.0f MB/s", count(int64(recordsPerSec)), recordsPerSec*float64(size)/1e6)
}

// mib formats bytes in MiB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
