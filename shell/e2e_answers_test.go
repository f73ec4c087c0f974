package main

// End-to-end: every listener answer of DESIGN 4.2, with the delivery,
// dead-letter and /readyz outcome each must have.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// answerRun is what one case of TestE2EListenerAnswers works with.
type answerRun struct {
	t    *testing.T
	e    *e2eEnv
	l    *fakeListener
	sent []string
	ids  map[string]string // correlation ID -> record line
}

// nthAnswer answers the first len(first) requests with first[i], then
// with then.
func nthAnswer(then fakeAnswer, first ...fakeAnswer) func(*fakeRequest) fakeAnswer {
	var n atomic.Int64
	return func(*fakeRequest) fakeAnswer {
		if i := int(n.Add(1)) - 1; i < len(first) {
			return first[i]
		}
		return then
	}
}

func anyLine(r *fakeRequest, f func(string) bool) bool {
	for _, line := range r.Lines {
		if f(line) {
			return true
		}
	}
	return false
}

// waitNotReady waits until /readyz answers 503 with a reason containing
// want, then checks that nothing was dropped or delivered meanwhile.
func (a *answerRun) waitNotReady(want string) {
	a.t.Helper()
	waitFor(a.t, "/readyz 503 mentioning "+want+" with every record kept", func() (bool, string) {
		code, body := a.e.readyz()
		m := a.e.scrape()
		kept := m.get("buffer_memory_records") + m.get("buffer_disk_records") + m.get("buffer_inflight_records")
		return code == 503 && strings.Contains(strings.ToLower(body), strings.ToLower(want)) && kept == float64(len(a.sent)),
			fmt.Sprintf("%d %q, %v records kept", code, body, kept)
	})
	m := a.e.scrape()
	if d, dr := m.get("records_delivered_total"), m.sum("records_dropped_total"); d != 0 || dr != 0 {
		a.t.Errorf("while the listener reports a configuration error: delivered %v, dropped %v; want neither", d, dr)
	}
}

// answerCase is one listener behaviour and what must follow from it.
type answerCase struct {
	name   string
	opts   func(*e2eOpts)
	answer func(*fakeRequest) fakeAnswer
	// hold: the first record goes alone and its request waits until every
	// other record is in the buffer, so the second batch holds all the rest.
	hold    bool
	keyFile bool               // the key comes from api_key_file, not api_key
	special map[int]string     // record index -> record line (poison, too large)
	during  func(a *answerRun) // runs after the records are sent
	dropped map[string]string  // correlation ID -> drop reason
	codes   map[string]float64 // forward_requests_total{code} minimums
	exact   map[string]float64 // forward_requests_total{code} exact values
	check   func(a *answerRun, reqs []fakeRequest)
}

func TestE2EListenerAnswers(t *testing.T) {
	t.Parallel()
	const n = 20
	ok := fakeAnswer{Code: 200}
	throttle := func(code int) answerCase {
		return answerCase{
			name:   fmt.Sprintf("%d with Retry-After", code),
			answer: nthAnswer(ok, fakeAnswer{Code: code, RetryAfter: "1"}, fakeAnswer{Code: code, RetryAfter: "1"}),
			exact:  map[string]float64{fmt.Sprint(code): 2},
			// Two throttles with breaker.failures = 2: if they counted, the
			// breaker would open and /readyz would say so.
			during: func(a *answerRun) {
				for deadline := time.Now().Add(e2eWait); time.Now().Before(deadline); time.Sleep(e2ePoll) {
					m := a.e.scrape()
					if s := m.get("breaker_state"); s != 0 {
						a.t.Fatalf("breaker_state %v after a throttling answer: throttles must not count toward the breaker", s)
					}
					if code, body := a.e.readyz(); code != 200 {
						a.t.Fatalf("/readyz %d %q while throttled: still ready", code, body)
					}
					if m.get("records_delivered_total") == n {
						return
					}
				}
			},
			check: func(a *answerRun, reqs []fakeRequest) {
				for i := 1; i < 3 && i < len(reqs); i++ {
					if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 900*time.Millisecond {
						a.t.Errorf("request %d came %s after a %d with Retry-After: 1, want >= 1s", i, gap, code)
					}
				}
			},
		}
	}
	configError := func(code int, location, readyWant string) answerCase {
		return answerCase{
			name: fmt.Sprintf("%d configuration error", code),
			answer: func(*fakeRequest) fakeAnswer {
				return fakeAnswer{Code: code, Location: location}
			},
			during: func(a *answerRun) {
				a.waitNotReady(readyWant)
				a.l.answerCode(200) // fixed: everything kept is delivered
			},
			codes: map[string]float64{fmt.Sprint(code): 1},
		}
	}
	redirect := configError(302, "/elsewhere", "redirect")
	redirect.name = "302 redirect, never followed"
	redirect.answer = func(r *fakeRequest) fakeAnswer {
		if r.Path == "/elsewhere" {
			return fakeAnswer{Code: 200} // a follower would see an "ack" here
		}
		return fakeAnswer{Code: 302, Location: "/elsewhere"}
	}
	redirect.check = func(a *answerRun, reqs []fakeRequest) {
		for _, r := range reqs {
			if r.Path != "/v1/ingest" {
				a.t.Errorf("request %d went to %s: the redirect was followed", r.N, r.Path)
			}
		}
	}

	cases := []answerCase{
		{name: "200", answer: func(*fakeRequest) fakeAnswer { return ok }, exact: map[string]float64{"500": 0}},
		{name: "204 without gzip", opts: func(o *e2eOpts) { o.NoGzip = true },
			answer: func(*fakeRequest) fakeAnswer { return fakeAnswer{Code: 204} }, codes: map[string]float64{"204": 1},
			check: func(a *answerRun, reqs []fakeRequest) {
				for _, r := range reqs {
					if r.Encoding != "" {
						a.t.Errorf("Content-Encoding %q with forward.gzip = false", r.Encoding)
					}
				}
			}},
		throttle(408),
		throttle(429),
		throttle(503),
		{name: "500 then 200", answer: nthAnswer(ok, fakeAnswer{Code: 500}), exact: map[string]float64{"500": 1}},
		{name: "timeout then 200", opts: func(o *e2eOpts) { o.Timeout = "300ms" },
			answer: nthAnswer(ok, fakeAnswer{Code: 200, Sleep: 2 * time.Second}),
			codes:  map[string]float64{"timeout": 1}},
		{name: "413 for more than 4 lines", hold: true,
			answer: func(r *fakeRequest) fakeAnswer {
				if len(r.Lines) > 4 {
					return fakeAnswer{Code: 413}
				}
				return ok
			},
			codes: map[string]float64{"413": 1}},
		{name: "413 for a record over 1000 bytes", hold: true,
			special: map[int]string{10: recPadded("r-10", 1500)},
			answer: func(r *fakeRequest) fakeAnswer {
				if anyLine(r, func(l string) bool { return len(l) > 1000 }) {
					return fakeAnswer{Code: 413}
				}
				return ok
			},
			dropped: map[string]string{"r-10": "too_large"}, codes: map[string]float64{"413": 1}},
		{name: "400 for a poison record", hold: true,
			special: map[int]string{7: `{"correlation_id":"r-07","poison":true}`},
			answer: func(r *fakeRequest) fakeAnswer {
				if anyLine(r, func(l string) bool { return strings.Contains(l, `"poison":true`) }) {
					return fakeAnswer{Code: 400}
				}
				return ok
			},
			dropped: map[string]string{"r-07": "poison"}, codes: map[string]float64{"400": 2}},
		{name: "422 for a poison record", hold: true,
			special: map[int]string{19: `{"correlation_id":"r-19","poison":true}`},
			answer: func(r *fakeRequest) fakeAnswer {
				if anyLine(r, func(l string) bool { return strings.Contains(l, `"poison":true`) }) {
					return fakeAnswer{Code: 422}
				}
				return ok
			},
			dropped: map[string]string{"r-19": "poison"}, codes: map[string]float64{"422": 2}},
		{name: "401 until the key file changes",
			keyFile: true,
			answer: func(r *fakeRequest) fakeAnswer {
				if r.Auth != "Bearer key-two-7c1d9e" {
					return fakeAnswer{Code: 401}
				}
				return ok
			},
			during: func(a *answerRun) {
				a.waitNotReady("401")
				writeAtomic(a.t, a.e.o.APIKeyFile, "key-two-7c1d9e\n") // re-read after the next 401
			},
			codes: map[string]float64{"401": 1},
			check: func(a *answerRun, reqs []fakeRequest) {
				if got := reqs[0].Auth; got != "Bearer key-one-5a2b8f" {
					a.t.Errorf("first request: Authorization %q, want the key file's first key", got)
				}
				stderr := a.e.procs[0].stderr.String()
				for _, k := range []string{"key-one-5a2b8f", "key-two-7c1d9e"} {
					if strings.Contains(stderr, k) {
						a.t.Errorf("the API key %q appears in the daemon's stderr", k)
					}
				}
			}},
		redirect,
		configError(404, "", "404"),
		configError(403, "", "403"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runAnswerCase(t, tc, n)
		})
	}
}

func runAnswerCase(t *testing.T, tc answerCase, n int) {
	l := newFakeListener(t)
	l.setAnswer(tc.answer)
	if tc.hold {
		l.holdRequests()
	}
	key := "e2e-secret-4f0a3c"
	e := newE2EEnv(t, func(o *e2eOpts) {
		o.URL = l.url()
		o.APIKey = key
		if tc.opts != nil {
			tc.opts(o)
		}
	})
	if tc.keyFile {
		e.o.APIKey, e.o.APIKeyFile, key = "", e.path("api.key"), "key-one-5a2b8f"
		writeAtomic(t, e.o.APIKeyFile, key+"\n")
		e.writeConfig()
	}
	e.start()
	a := &answerRun{t: t, e: e, l: l, ids: map[string]string{}}
	var lines []string
	for i := range n {
		id := fmt.Sprintf("r-%02d", i)
		line := rec(id)
		if s, ok := tc.special[i]; ok {
			line = s
		}
		a.sent = append(a.sent, id)
		a.ids[id] = line
		lines = append(lines, line)
	}
	if tc.hold {
		e.send(lines[0])
		waitFor(t, "the first request", func() (bool, string) { return len(l.requests()) > 0, "none yet" })
		e.send(lines[1:]...)
		e.waitMetric(float64(n), "records_received_total")
		l.release()
	} else {
		e.send(lines...)
	}
	if tc.during != nil {
		tc.during(a)
	}
	m := e.waitDrained(float64(n))
	reqs := l.requests()

	var dropped []string
	for id := range tc.dropped {
		dropped = append(dropped, id)
	}
	order := checkDelivery(t, reqs, a.sent, dropped...)
	var want []string
	for _, id := range a.sent {
		if tc.dropped[id] == "" {
			want = append(want, id)
		}
	}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("delivered in this order:\n%v\nwant:\n%v", order, want)
	}

	// Dead letters: exactly the expected records, counted by reason, each
	// in a file of <spool>/dead-letter.
	byReason := map[string]float64{}
	for _, r := range tc.dropped {
		byReason[r]++
	}
	for _, r := range []string{"too_large", "poison", "disk_full_oldest", "disk_full_newest", "memory_full", "corrupt"} {
		if got := m.get("records_dropped_total", "reason", r); got != byReason[r] {
			t.Errorf("records_dropped_total{reason=%q} = %v, want %v", r, got, byReason[r])
		}
	}
	files := e.deadLetterFiles()
	if len(files) != len(tc.dropped) {
		t.Errorf("%d files in dead-letter/, want %d", len(files), len(tc.dropped))
	}
	if got := m.get("dead_letter_files"); got != float64(len(tc.dropped)) {
		t.Errorf("dead_letter_files = %v, want %d", got, len(tc.dropped))
	}
	for id := range tc.dropped {
		found := false
		for _, f := range files {
			found = found || strings.Contains(f, a.ids[id])
		}
		if !found {
			t.Errorf("record %s is in no dead-letter file", id)
		}
	}

	for code, min := range tc.codes {
		if got := m.get("forward_requests_total", "code", code); got < min {
			t.Errorf("forward_requests_total{code=%q} = %v, want at least %v", code, got, min)
		}
	}
	for code, want := range tc.exact {
		if got := m.get("forward_requests_total", "code", code); got != want {
			t.Errorf("forward_requests_total{code=%q} = %v, want %v", code, got, want)
		}
	}
	if got := m.sum("forward_requests_total"); got != float64(len(reqs)) {
		t.Errorf("forward_requests_total sums to %v; the listener saw %d requests", got, len(reqs))
	}
	for _, r := range reqs {
		if r.Auth != "Bearer "+key && !tc.keyFile {
			t.Errorf("request %d: Authorization %q, want Bearer <api_key>", r.N, r.Auth)
		}
	}
	if tc.check != nil {
		tc.check(a, reqs)
	}

	// Delivered everything it could: ready again, and the key never logged.
	if code, body := e.readyz(); code != 200 || body != "ready" {
		t.Errorf("/readyz after delivery = %d %q, want 200 ready", code, body)
	}
	p := e.procs[len(e.procs)-1]
	if code := p.stop(syscall.SIGTERM); code != exitOK {
		t.Errorf("SIGTERM: exit code %d, want 0", code)
	}
	if strings.Contains(p.stderr.String(), key) {
		t.Errorf("the API key appears in the daemon's stderr")
	}
}

// writeAtomic replaces a file by rename, so the daemon never reads half.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
