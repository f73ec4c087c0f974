package main

import (
	"sync/atomic"

	"github.com/bitville/apmd/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

const ns = "bitville_apmd"

// metrics are the daemon's Prometheus metrics (DESIGN 4.5). Counters the
// socket readers and the forwarder bump are ordinary vectors; the buffer's
// counters and gauges come from the latest core.Stats snapshot the owner
// publishes, so scraping never touches core.
type metrics struct {
	reg         *prometheus.Registry
	rejected    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	connRefused prometheus.Counter
	snap        atomic.Pointer[snapshot]
}

// snapshot is what the owner publishes after each tick and each answer.
type snapshot struct {
	stats       core.Stats
	breaker     core.BreakerState
	queueBytes  int64
	connections int64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_rejected_total",
		Help: "Lines rejected at ingest, by reason; they get no sequence number."}, []string{"reason"})
	for _, r := range core.RejectReasons {
		m.rejected.WithLabelValues(string(r))
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "forward_requests_total",
		Help: "Requests to the listener by answer: the HTTP code, or timeout, refused, error."}, []string{"code"})
	m.connRefused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ingest_connections_refused_total",
		Help: "Connections closed at once because ingest.max_connections were open."})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the version label says which build runs.", ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	m.reg.MustRegister(m.rejected, m.requests, m.connRefused, build, statsCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var (
	descReceived    = desc("records_received_total", "Valid records accepted into the buffer.")
	descDelivered   = desc("records_delivered_total", "Records acknowledged by the listener.")
	descRedelivered = desc("records_redelivered_total", "Delivered records an earlier process had already delivered.")
	descRecovered   = desc("records_recovered_total", "Records found on disk at start.")
	descDropped     = desc("records_dropped_total", "Accepted records that will never be delivered, by reason.", "reason")
	descSpilled     = desc("spill_segments_total", "Segments written to disk.")
	descSpillFail   = desc("spill_failures_total", "Spills that failed (the records stayed in memory).")
	descMemRecords  = desc("buffer_memory_records", "Records in memory, not in flight.")
	descMemBytes    = desc("buffer_memory_bytes", "Bytes of the records in memory.")
	descDiskRecords = desc("buffer_disk_records", "Records on disk, not in flight.")
	descDiskBytes   = desc("buffer_disk_bytes", "Bytes of segment and temp files.")
	descDiskSegs    = desc("buffer_disk_segments", "Segment files in the spool.")
	descInFlight    = desc("buffer_inflight_records", "Records in the request in flight.")
	descQuarFiles   = desc("quarantine_files", "Damaged segments kept in quarantine/.")
	descQuarBytes   = desc("quarantine_bytes", "Bytes in quarantine/.")
	descDeadFiles   = desc("dead_letter_files", "Files of rejected records in dead-letter/.")
	descDeadBytes   = desc("dead_letter_bytes", "Bytes in dead-letter/.")
	descOldest      = desc("oldest_record_age_seconds", "Age of the oldest undelivered record: the delivery lag.")
	descBreaker     = desc("breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open.")
	descQueue       = desc("ingest_queue_bytes", "Bytes waiting between the socket readers and the buffer.")
	descConns       = desc("ingest_connections", "Open client connections.")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

// statsCollector turns the latest snapshot into metrics at scrape time.
type statsCollector struct{ m *metrics }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	sn := c.m.snap.Load()
	if sn == nil {
		return
	}
	s := sn.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descReceived, s.Accepted)
	counter(descDelivered, s.Delivered)
	counter(descRedelivered, s.Redelivered)
	counter(descRecovered, s.Recovered)
	for _, r := range core.DropReasons {
		counter(descDropped, s.Dropped[r], string(r))
	}
	counter(descSpilled, s.SpilledSegments)
	counter(descSpillFail, s.SpillFailures)
	gauge(descMemRecords, float64(s.MemoryRecords))
	gauge(descMemBytes, float64(s.MemoryBytes))
	gauge(descDiskRecords, float64(s.DiskRecords))
	gauge(descDiskBytes, float64(s.DiskBytes))
	gauge(descDiskSegs, float64(s.DiskSegments))
	gauge(descInFlight, float64(s.InFlightRecords))
	gauge(descQuarFiles, float64(s.QuarantineFiles))
	gauge(descQuarBytes, float64(s.QuarantineBytes))
	gauge(descDeadFiles, float64(s.DeadLetterFiles))
	gauge(descDeadBytes, float64(s.DeadLetterBytes))
	gauge(descOldest, s.OldestRecordAge.Seconds())
	gauge(descBreaker, float64(sn.breaker))
	gauge(descQueue, float64(sn.queueBytes))
	gauge(descConns, float64(sn.connections))
}
