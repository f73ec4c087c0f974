package main

import (
	"fmt"
	"os"
	"time"
)

// progress shows one status line on stderr: rewritten in place on a
// terminal, a line every few seconds otherwise.
type progress struct {
	label string
	tty   bool
	shown time.Time
	start time.Time
	text  string
}

func newProgress(label string) *progress {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &progress{label: label, tty: tty, start: time.Now()}
}

// show updates the status, throttled.
func (p *progress) show(status string) {
	p.text = status
	every := 250 * time.Millisecond
	if !p.tty {
		every = 3 * time.Second
	}
	if time.Since(p.shown) < every {
		return
	}
	p.shown = time.Now()
	p.print()
}

func (p *progress) print() {
	line := fmt.Sprintf("  %s [%4.1fs] %s", p.label, time.Since(p.start).Seconds(), p.text)
	if p.tty {
		fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(os.Stderr, line)
	}
}

// end prints the final status and ends the line.
func (p *progress) end() {
	p.print()
	if p.tty {
		fmt.Fprintln(os.Stderr)
	}
}

// poll calls check every interval until it reports done, an error, or the
// timeout passes, showing its status. It returns the time at which check
// returned done (taken after the call: conservative for rates).
func poll(label string, timeout, every time.Duration, check func() (bool, string, error)) (time.Time, error) {
	pr := newProgress(label)
	defer pr.end()
	deadline := time.Now().Add(timeout)
	for {
		ok, status, err := check()
		now := time.Now()
		if err != nil {
			return now, err
		}
		pr.show(status)
		if ok {
			return now, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("%s: not done within %s (last status: %s)", label, timeout.Round(time.Second), status)
		}
		time.Sleep(every)
	}
}

// watch polls the daemon's /metrics until done holds; it fails at once if
// the daemon exits. It returns when done first held and that scrape.
func (p *daemonProc) watch(label string, timeout, every time.Duration, done func(metricsMap) (bool, string, error)) (time.Time, metricsMap, error) {
	var last metricsMap
	t, err := poll(label, timeout, every, func() (bool, string, error) {
		if p.exited() {
			return false, "", fmt.Errorf("%s exited unexpectedly (%s); log: %s%s", p.name, p.cmd.ProcessState, p.logPath, p.logTail())
		}
		m, err := p.scrape()
		if err != nil {
			return false, "waiting for /metrics", nil
		}
		last = m
		return done(m)
	})
	if err != nil && last != nil && !p.exited() {
		err = fmt.Errorf("%w; log: %s%s", err, p.logPath, p.logTail())
	}
	return t, last, err
}

// accountedFor is a watch condition: received plus every rejection has
// reached n (the daemon has taken every line j sent); it fails if j failed.
func accountedFor(n int64, j *sendJob) func(metricsMap) (bool, string, error) {
	return func(m metricsMap) (bool, string, error) {
		got := m.n(mReceived) + m.sum(mRejected)
		status := fmt.Sprintf("sent %s, received %s, overload %s of %s",
			count(j.sent.Load()), count(m.n(mReceived)), count(m.n(mOverload)), count(n))
		return got >= n, status, j.failed()
	}
}

// timeoutFor is a generous bound for handling n records: a minute plus
// n at 5,000 records/s.
func timeoutFor(n int) time.Duration {
	return time.Minute + time.Duration(n/5000)*time.Second
}

// count formats an integer with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
