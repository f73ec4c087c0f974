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

// pushAll adds records in order while they fit and returns how many it
// took; the caller counts the rest as overload. One lock per socket read,
// not per record.
func (q *ingestQueue) pushAll(recs [][]byte) int {
	q.mu.Lock()
	n := 0
	for _, rec := range recs {
		if q.bytes+int64(len(rec)) > q.maxBytes {
			break
		}
		q.recs = append(q.recs, rec)
		q.bytes += int64(len(rec))
		n++
	}
	q.mu.Unlock()
	if n > 0 {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	return n
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
