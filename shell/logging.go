package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	level, _ := parseLevel(cfg.Level) // validated
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// rateLimiter lets one log line per key through per period and counts the
// ones it held back, so a flood of bad lines cannot flood the log.
type rateLimiter struct {
	mu         sync.Mutex
	period     time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func newRateLimiter(period time.Duration) *rateLimiter {
	return &rateLimiter{period: period, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// allow reports whether a line for key may be logged now, and how many were
// held back since the last one.
func (r *rateLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.last[key]) < r.period {
		r.suppressed[key]++
		return false, 0
	}
	r.last[key] = now
	n := r.suppressed[key]
	r.suppressed[key] = 0
	return true, n
}
