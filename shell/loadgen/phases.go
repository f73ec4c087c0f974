package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	frameOverhead  = 20 // bytes a segment adds per record (core/FORMAT.md)
	segmentHeader  = 56 // bytes a segment adds per file
	stopWait       = 30 * time.Second
	pollEvery      = 50 * time.Millisecond // /metrics scrapes cost the daemon ~1% CPU at this rate
	sigtermRecords = 200_000
	rssMemoryBytes = 64 << 20
	fillRounds     = 10 // sends to refill what was dropped as overload
)

// phaseIngest (1): records/s and MB/s the daemon receives while spilling
// everything (listener down), against a plain reader fed the same way.
func (e *env) phaseIngest() error {
	n, size := int64(e.opt.n), e.opt.size
	base, err := e.ingestBaseline()
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	dir := filepath.Join(e.root, "spool-ingest")
	took, m, err := e.ingestDaemon(dir)
	if err != nil {
		return err
	}
	e.backlog = &spool{dir: dir, records: m.n(mReceived)}
	rate, baseRate := float64(m.n(mReceived))/took.Seconds(), float64(n)/base.Seconds()
	r := row{phase: "1 ingest while spilling", figure: "received " + ratePair(rate, size),
		baseline: "plain reader " + ratePair(baseRate, size),
		target:   fmt.Sprintf("%.2fx (target >= 0.80x)", rate/baseRate), verdict: verdict(rate >= 0.8*baseRate)}
	if ov := m.n(mOverload); ov > 0 {
		r.verdict = fmt.Sprintf("invalid: %s overload drops (%.1f%%)", count(ov), 100*float64(ov)/float64(n))
	}
	e.rows = append(e.rows, r)
	e.note("1: %s records of %d bytes over %d connections, up to 64 KiB per write; MB = 10^6 record bytes; figure = records_received_total / time until received+rejected = N (read from /metrics, published on the daemon's 50 ms tick with max_memory_age 200ms, polled every 50 ms: conservative)",
		count(n), size, e.opt.conns)
	return nil
}

// ingestBaseline feeds the plain reader and returns the time until it has
// judged every line.
func (e *env) ingestBaseline() (time.Duration, error) {
	n := int64(e.opt.n)
	path := filepath.Join(e.sockDir, "plain.sock")
	r, err := startPlainReader(path)
	if err != nil {
		return 0, err
	}
	defer r.close()
	start := time.Now()
	j := startSend(path, e.opt.conns, n, e.opt.size, 1)
	end, err := poll("plain reader", timeoutFor(int(n)), time.Millisecond, func() (bool, string, error) {
		got := r.valid.Load() + r.invalid.Load()
		return got >= n, fmt.Sprintf("sent %s, read %s of %s", count(j.sent.Load()), count(got), count(n)), j.failed()
	})
	if err != nil {
		return 0, err
	}
	if bad := r.invalid.Load(); bad > 0 {
		return 0, fmt.Errorf("the plain reader judged %d lines invalid: a bug in the record generator", bad)
	}
	return end.Sub(start), j.wait()
}

// ingestDaemon sends n records to a daemon whose listener is down and
// returns the time until it accounted for all of them, then stops it.
func (e *env) ingestDaemon(dir string) (time.Duration, metricsMap, error) {
	n := int64(e.opt.n)
	if err := e.ensureFree(n); err != nil {
		return 0, nil, err
	}
	url, err := deadURL()
	if err != nil {
		return 0, nil, err
	}
	cfg := baseConfig(dir, url)
	cfg.maxAge, cfg.diskBytes = "200ms", e.diskCap(n)
	p, err := e.startDaemon("ingest", cfg)
	if err != nil {
		return 0, nil, err
	}
	defer p.kill()
	start := time.Now()
	j := startSend(p.sock, e.opt.conns, n, e.opt.size, 1)
	end, m, err := p.watch("daemon ingest", timeoutFor(int(n)), pollEvery, accountedFor(n, j))
	if err != nil {
		return 0, nil, fmt.Errorf("the daemon did not account for %s records: %w", count(n), err)
	}
	if err := j.wait(); err != nil {
		return 0, nil, err
	}
	if other := m.sum(mRejected) - m.n(mOverload); other > 0 {
		return 0, nil, fmt.Errorf("%d records rejected for other reasons than overload: a bug in the record generator", other)
	}
	_, _, err = p.stop(stopWait)
	return end.Sub(start), m, err
}

// phaseDisk (2): segment bytes on disk per record byte, after phase 1 (or
// after a fill of -n records).
func (e *env) phaseDisk() error {
	if e.backlog == nil {
		sp, err := e.fill("disk", filepath.Join(e.root, "spool-disk"), int64(e.opt.n))
		if err != nil {
			return err
		}
		e.backlog = &sp
	}
	segBytes, segs, err := segmentBytes(e.backlog.dir)
	if err != nil {
		return err
	}
	payload := float64(e.backlog.records) * float64(e.opt.size)
	minimum := float64(e.backlog.records*int64(e.opt.size+frameOverhead)+segs*segmentHeader) / payload
	ratio := float64(segBytes) / payload
	e.rows = append(e.rows, row{phase: "2 disk bytes per payload byte",
		figure:   fmt.Sprintf("%.4f (%s in %d segments)", ratio, mib(segBytes), segs),
		baseline: fmt.Sprintf("format minimum %.4f", minimum),
		target:   "<= 1.05", verdict: verdict(ratio <= 1.05)})
	return nil
}

// segmentBytes sums the sizes of the *.seg files in a spool.
func segmentBytes(dir string) (bytes, files int64, err error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		return 0, 0, err
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return 0, 0, err
		}
		bytes += fi.Size()
	}
	return bytes, int64(len(names)), nil
}

// fill makes a spool of records by sending them to a daemon whose listener
// is down, resending what was dropped as overload (a few rounds at most),
// then stopping it gracefully.
func (e *env) fill(name, dir string, records int64) (spool, error) {
	if err := e.ensureFree(records); err != nil {
		return spool{}, err
	}
	url, err := deadURL()
	if err != nil {
		return spool{}, err
	}
	cfg := baseConfig(dir, url)
	cfg.diskBytes = e.diskCap(records)
	p, err := e.startDaemon(name, cfg)
	if err != nil {
		return spool{}, err
	}
	defer p.kill()
	received, err := e.sendRounds(p, records)
	if err != nil {
		return spool{}, err
	}
	if _, _, err := p.stop(stopWait); err != nil {
		return spool{}, err
	}
	return spool{dir: dir, records: received}, nil
}

// sendRounds sends until the daemon has received records, resending
// overload drops, in at most fillRounds rounds.
func (e *env) sendRounds(p *daemonProc, records int64) (int64, error) {
	var received, accounted int64
	next := uint64(1)
	for round := 1; round <= fillRounds && received < records; round++ {
		missing := records - received
		j := startSend(p.sock, e.opt.conns, missing, e.opt.size, next)
		next += uint64(missing)
		label := fmt.Sprintf("filling %s (round %d)", p.name, round)
		_, m, err := p.watch(label, timeoutFor(int(missing)), pollEvery, accountedFor(accounted+missing, j))
		if err != nil {
			return 0, fmt.Errorf("the daemon did not account for the records sent: %w", err)
		}
		if err := j.wait(); err != nil {
			return 0, err
		}
		received, accounted = m.n(mReceived), m.n(mReceived)+m.sum(mRejected)
	}
	if received < records {
		return 0, fmt.Errorf("after %d rounds the daemon had received %s of %s records (overload drops each round)", fillRounds, count(received), count(records))
	}
	return received, nil
}

// diskCap is a buffer.disk_bytes that holds records with room to spare.
func (e *env) diskCap(records int64) int64 {
	need := records*int64(e.opt.size+frameOverhead) + 64<<20
	return max(2<<30, need*5/4)
}

// ensureFree checks that the temp dir's filesystem can take records.
func (e *env) ensureFree(records int64) error {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(e.root, &fs); err != nil {
		return err
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	need := records*int64(e.opt.size+frameOverhead) + 256<<20
	if free < need {
		return fmt.Errorf("%s has %s free, the spool needs about %s: set TMPDIR elsewhere or lower -n / -backlog", e.root, mib(free), mib(need))
	}
	return nil
}

// phaseDrain (3): drain rate of the backlog with gzip on, then off (the
// backlog refilled between), against POSTs of the same batches from memory.
func (e *env) phaseDrain() error {
	for _, zip := range []bool{true, false} {
		if err := e.drainOnce(zip); err != nil {
			return err
		}
	}
	e.note("3: rate = records / (first request at the listener .. records_delivered_total reaching them); the listener counts records by X-Bitville-Seq and discards bodies; baseline = loadgen POSTing batches of the daemon's average size from memory to the same listener, one at a time; batch_records 5000, batch_bytes 4 MiB as in config.toml")
	return nil
}

// drainOnce drains one backlog and adds its row.
func (e *env) drainOnce(zip bool) error {
	name := map[bool]string{true: "drain-gzip", false: "drain-plain"}[zip]
	sp := e.backlog // phase 1's spool, when it holds exactly -n records
	e.backlog = nil
	if sp != nil && sp.records != int64(e.opt.n) {
		os.RemoveAll(sp.dir)
		sp = nil
	}
	if sp == nil {
		filled, err := e.fill(name+"-fill", filepath.Join(e.root, "spool-"+name), int64(e.opt.n))
		if err != nil {
			return err
		}
		sp = &filled
	}
	defer os.RemoveAll(sp.dir)
	took, st, err := e.drain(name, *sp, zip)
	if err != nil {
		return err
	}
	perBatch := int((st.records + st.requests - 1) / max(1, st.requests))
	base, err := e.drainBaseline(sp.records, perBatch, zip)
	if err != nil {
		return fmt.Errorf("drain baseline: %w", err)
	}
	rate, baseRate := float64(sp.records)/took.Seconds(), float64(sp.records)/base.Seconds()
	r := row{phase: "3 drain, gzip " + onOff(zip), baseline: "POST from memory " + ratePair(baseRate, e.opt.size),
		figure: ratePair(rate, e.opt.size) + fmt.Sprintf(", %d req, body %.2f of record bytes", st.requests,
			float64(st.bodyBytes)/float64(sp.records*int64(e.opt.size))),
		target: fmt.Sprintf("%.2fx of baseline; info", rate/baseRate), verdict: "info"}
	if zip {
		r.target = fmt.Sprintf("%.2fx of baseline; target >= 200,000 rec/s", rate/baseRate)
		r.verdict = verdict(rate >= 200_000)
	}
	if st.repeats > 0 {
		r.figure += fmt.Sprintf(", %s re-sent", count(st.repeats))
	}
	e.rows = append(e.rows, r)
	return nil
}

// drain starts a daemon on a filled spool with the listener up and returns
// the time from the first request to records_delivered_total == records.
func (e *env) drain(name string, sp spool, zip bool) (time.Duration, sinkStats, error) {
	s, err := startSink()
	if err != nil {
		return 0, sinkStats{}, err
	}
	defer s.close()
	cfg := baseConfig(sp.dir, s.url)
	cfg.gzip, cfg.diskBytes = zip, e.diskCap(sp.records)
	p, err := e.startDaemon(name, cfg)
	if err != nil {
		return 0, sinkStats{}, err
	}
	defer p.kill()
	end, _, err := p.watch(name, timeoutFor(int(sp.records)), pollEvery, delivered(sp.records, s))
	if err != nil {
		return 0, sinkStats{}, fmt.Errorf("the daemon did not deliver the backlog: %w", err)
	}
	st := s.stats()
	if _, _, err := p.stop(stopWait); err != nil {
		return 0, st, err
	}
	return end.Sub(st.first), st, nil
}

// delivered is a watch condition: records_delivered_total reached n.
func delivered(n int64, s *sink) func(metricsMap) (bool, string, error) {
	return func(m metricsMap) (bool, string, error) {
		d := m.n(mDelivered)
		if r := m.n(mRecovered); m.has(mRecovered) && r < n {
			return false, "", fmt.Errorf("the daemon recovered %s records, the backlog holds %s", count(r), count(n))
		}
		st := s.stats()
		return d >= n, fmt.Sprintf("delivered %s of %s (listener: %d requests, %s records)",
			count(d), count(n), st.requests, count(st.records)), nil
	}
}

// drainBaseline POSTs the same number of records from memory, perBatch at
// a time.
func (e *env) drainBaseline(records int64, perBatch int, zip bool) (time.Duration, error) {
	s, err := startSink()
	if err != nil {
		return 0, err
	}
	defer s.close()
	fmt.Fprintf(os.Stderr, "  baseline: POSTing %s records from memory, %d a batch (gzip %s)\n", count(records), perBatch, onOff(zip))
	return postBaseline(s.url, int(records), e.opt.size, perBatch, zip)
}

// phaseSigterm (4): time from SIGTERM to exit with 200k records in memory,
// then a restart to check that every one was saved.
func (e *env) phaseSigterm() error {
	dir := filepath.Join(e.root, "spool-sigterm")
	defer os.RemoveAll(dir)
	took, before, err := e.stopLoaded(dir)
	if err != nil {
		return err
	}
	recovered, err := e.recoveredIn(dir)
	if err != nil {
		return err
	}
	base, err := writeFsync(dir, before.n(mReceived)*int64(e.opt.size+frameOverhead))
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	lost := before.n(mReceived) - recovered
	e.rows = append(e.rows, row{phase: "4 SIGTERM, 200k in memory",
		figure:   fmt.Sprintf("%.3f s to exit; %s recovered, %s lost", took.Seconds(), count(recovered), count(lost)),
		baseline: fmt.Sprintf("plain write+fsync of the bytes %.3f s", base.Seconds()),
		target:   "< 0.5 s, 0 lost", verdict: verdict(took < 500*time.Millisecond && lost == 0)})
	e.note("4: before SIGTERM: %s in memory, %s in flight, %s on disk, %s overload drops",
		count(before.n(mMemRecords)), count(before.n(mInFlight)), count(before.n(mDiskRecords)), count(before.n(mOverload)))
	return nil
}

// stopLoaded fills a daemon's memory with 200k records (listener down) and
// times its graceful stop.
func (e *env) stopLoaded(dir string) (time.Duration, metricsMap, error) {
	url, err := deadURL()
	if err != nil {
		return 0, nil, err
	}
	cfg := baseConfig(dir, url)
	cfg.memRecords, cfg.maxAge = sigtermRecords*5/4, "1m"
	cfg.memBytes = max(512<<20, int64(sigtermRecords)*int64(e.opt.size)*5/4)
	p, err := e.startDaemon("sigterm", cfg)
	if err != nil {
		return 0, nil, err
	}
	defer p.kill()
	j := startSend(p.sock, e.opt.conns, sigtermRecords, e.opt.size, 1)
	_, m, err := p.watch("filling memory", timeoutFor(sigtermRecords), pollEvery, accountedFor(sigtermRecords, j))
	if err != nil {
		return 0, nil, err
	}
	if err := j.wait(); err != nil {
		return 0, nil, err
	}
	took, _, err := p.stop(stopWait)
	return took, m, err
}

// recoveredIn restarts a daemon on dir and reads records_recovered_total.
func (e *env) recoveredIn(dir string) (int64, error) {
	url, err := deadURL()
	if err != nil {
		return 0, err
	}
	p, err := e.startDaemon("sigterm-restart", baseConfig(dir, url))
	if err != nil {
		return 0, err
	}
	defer p.kill()
	m, err := p.scrape()
	if err != nil {
		return 0, err
	}
	_, _, err = p.stop(stopWait)
	return m.n(mRecovered), err
}

// writeFsync is the SIGTERM baseline: write n bytes to a file in dir in
// 4 MiB writes, fsync it and the folder, and remove it.
func writeFsync(dir string, n int64) (time.Duration, error) {
	name := filepath.Join(dir, "baseline.tmp")
	defer os.Remove(name)
	buf := []byte(strings.Repeat("x", 4<<20))
	start := time.Now()
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return time.Since(start), d.Sync()
}

// phaseRSS (5): the daemon's RSS, sampled every 100 ms, while a backlog of
// -backlog bytes drains with memory_bytes = 64 MiB.
func (e *env) phaseRSS() error {
	records := e.opt.backlog / int64(e.opt.size)
	dir := filepath.Join(e.root, "spool-rss")
	defer os.RemoveAll(dir)
	sp, err := e.fill("rss-fill", dir, records)
	if err != nil {
		return err
	}
	onDisk := segSize(dir)
	rs, err := e.drainSampled(sp)
	if err != nil {
		return err
	}
	above := rs.max - rssMemoryBytes
	e.rows = append(e.rows, row{phase: "5 RSS while a backlog drains",
		figure:   fmt.Sprintf("max %s = memory_bytes %+.1f MiB", mib(rs.max), float64(above)/(1<<20)),
		baseline: fmt.Sprintf("RSS first %s, last %s (%d samples)", mib(rs.first), mib(rs.last), rs.samples),
		target:   "<= memory_bytes + 48 MiB", verdict: verdict(above <= 48<<20)})
	e.note("5: backlog %s of records (%s records, %s in segments), memory_bytes %s, drained in %.1f s",
		mib(e.opt.backlog), count(sp.records), onDisk, mib(rssMemoryBytes), rs.took.Seconds())
	return nil
}

// rssStats are the RSS samples of one drain.
type rssStats struct {
	first, last, max int64
	samples          int
	took             time.Duration
}

// drainSampled drains sp with the listener up, sampling RSS every 100 ms.
func (e *env) drainSampled(sp spool) (rssStats, error) {
	s, err := startSink()
	if err != nil {
		return rssStats{}, err
	}
	defer s.close()
	cfg := baseConfig(sp.dir, s.url)
	cfg.memBytes, cfg.diskBytes = rssMemoryBytes, e.diskCap(sp.records)
	p, err := e.startDaemon("rss", cfg)
	if err != nil {
		return rssStats{}, err
	}
	defer p.kill()
	var rs rssStats
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() { rs = sampleRSS(p, stop); close(sampled) }()
	end, _, err := p.watch("draining (RSS sampled)", timeoutFor(int(sp.records)), pollEvery, delivered(sp.records, s))
	close(stop)
	<-sampled
	if err != nil {
		return rs, fmt.Errorf("the daemon did not deliver the backlog: %w", err)
	}
	rs.took = end.Sub(s.stats().first)
	_, _, err = p.stop(stopWait)
	return rs, err
}

// sampleRSS reads the daemon's RSS every 100 ms until stop is closed.
func sampleRSS(p *daemonProc, stop chan struct{}) rssStats {
	var rs rssStats
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if v, err := p.rss(); err == nil {
			if rs.samples == 0 {
				rs.first = v
			}
			rs.samples++
			rs.last, rs.max = v, max(rs.max, v)
		}
		select {
		case <-stop:
			return rs
		case <-t.C:
		}
	}
}

// segSize describes the segment bytes in dir, for notes.
func segSize(dir string) string {
	b, _, err := segmentBytes(dir)
	if err != nil {
		return "?"
	}
	return mib(b)
}
