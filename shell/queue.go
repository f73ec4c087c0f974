package main

import "sync"

// ingestQueue hands records from the socket readers to the owner. It is
// bounded in bytes; a reader never waits: when the queue is full the record
// is dropped and counted as overload (DESIGN 4.1), because a blocked reader
// would make PHP's non-blocking write fail, a loss counted nowhere.
type ingestQueue struct {
	mu       sync.Mutex
	recs     [][]byte
	bytes    int64
	maxBytes int64
	notify   chan struct{} // one pending wake-up for the owner
}

func newIngestQueue(maxBytes int64) *ingestQueue {
	return &ingestQueue{maxBytes: maxBytes, notify: make(chan struct{}, 1)}
}

// push adds a record the caller no longer uses; false means it was dropped.
func (q *ingestQueue) push(rec []byte) bool {
	q.mu.Lock()
	if q.bytes+int64(len(rec)) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.recs = append(q.recs, rec)
	q.bytes += int64(len(rec))
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued record, oldest first, reusing spare for the
// next round so the steady state allocates nothing.
func (q *ingestQueue) take(spare [][]byte) [][]byte {
	q.mu.Lock()
	recs := q.recs
	q.recs = spare[:0]
	q.bytes = 0
	q.mu.Unlock()
	return recs
}

// held returns the bytes queued now.
func (q *ingestQueue) held() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
