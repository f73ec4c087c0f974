package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A generated record is one JSON object of an exact size:
//
//	{"correlation_id":"00000000000000000042","pad":"xxxx…"}
//
// The id has a fixed width so that a sender can patch it in place.
const (
	recPrefix     = `{"correlation_id":"`
	idDigits      = 20
	recMiddle     = `","pad":"`
	recSuffix     = `"}`
	minRecordSize = len(recPrefix) + idDigits + len(recMiddle) + len(recSuffix)

	chunkBytes   = 64 << 10         // bytes a sender writes per call, at most (one record if larger)
	writeTimeout = 60 * time.Second // one write that blocks longer fails the run
)

// fillRecord makes rec (len(rec) >= minRecordSize) a JSON object of exactly
// len(rec) bytes with the given correlation id. The padding is words and
// numbers drawn from seed, so that it compresses about as well as a real
// profile (a few times), not like a run of one byte.
func fillRecord(rec []byte, id, seed uint64) {
	n := copy(rec, recPrefix)
	n += idDigits
	n += copy(rec[n:], recMiddle)
	end := len(rec) - len(recSuffix)
	fillPadding(rec[n:end], seed)
	copy(rec[end:], recSuffix)
	setID(rec, id)
}

// padWords are what the padding is made of; none needs JSON escaping.
var padWords = []string{"App", "Http", "Controllers", "OrderController", "handle", "wall_time", "cpu",
	"memory_peak", "db", "query", "SELECT", "FROM", "orders", "WHERE", "user_id", "render", "template",
	"Illuminate", "Database", "Connection", "select", "vendor/laravel", "framework", "src", "php",
	"redis", "GET", "session", "cache", "hit", "miss", "calls", "children", "include", "autoload"}

// fillPadding fills pad with profile-like entries, "word::word ct=N wt=N
// mu=N;", the words and numbers chosen by a xorshift generator seeded with
// seed. It gzips about 3.3x at level 1, more like a real profile; a run of one
// byte would make the gzip figures meaningless.
func fillPadding(pad []byte, seed uint64) {
	x := seed*0x9E3779B97F4A7C15 | 1
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	var entry []byte
	for i := 0; i < len(pad); {
		r := next()
		entry = append(entry[:0], padWords[r%uint64(len(padWords))]...)
		entry = append(entry, "::"...)
		entry = append(entry, padWords[(r>>8)%uint64(len(padWords))]...)
		entry = append(entry, " ct="...)
		entry = strconv.AppendUint(entry, 1+(r>>16)%9, 10)
		entry = append(entry, " wt="...)
		entry = strconv.AppendUint(entry, (r>>24)%10000, 10)
		entry = append(entry, " mu="...)
		entry = strconv.AppendUint(entry, (r>>40)%100000, 10)
		entry = append(entry, "; "...)
		i += copy(pad[i:], entry)
	}
}

// setID writes id, zero-padded to idDigits, into a record made by fillRecord.
func setID(rec []byte, id uint64) {
	d := rec[len(recPrefix) : len(recPrefix)+idDigits]
	for i := idDigits - 1; i >= 0; i-- {
		d[i] = byte('0' + id%10)
		id /= 10
	}
}

// sendAll writes n records of size bytes (ids from firstID on, each line
// ended by '\n') to the Unix socket at path over conns connections, as fast
// as the socket takes them. sent counts the records written, for progress.
func sendAll(path string, conns, n, size int, firstID uint64, sent *atomic.Int64) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	next := firstID
	for i := range conns {
		count := n / conns
		if i < n%conns {
			count++
		}
		wg.Add(1)
		go func(first uint64) {
			defer wg.Done()
			if err := sendConn(path, count, size, first, sent); err != nil {
				errs <- err
			}
		}(next)
		next += uint64(count)
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when no sender failed
}

// sendConn writes count records over one connection, many per write call.
func sendConn(path string, count, size int, firstID uint64, sent *atomic.Int64) error {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", path, err)
	}
	defer c.Close()
	line := size + 1
	per := max(1, chunkBytes/line)
	buf := make([]byte, per*line)
	for i := range per {
		fillRecord(buf[i*line:i*line+size], 0, firstID+uint64(i))
		buf[i*line+size] = '\n'
	}
	id := firstID
	for left := count; left > 0; {
		k := min(per, left)
		for i := range k {
			setID(buf[i*line:], id)
			id++
		}
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(buf[:k*line]); err != nil {
			return fmt.Errorf("write to %s: %w", path, err)
		}
		left -= k
		sent.Add(int64(k))
	}
	return nil
}

// plainReader is the ingest baseline: a Unix socket server that reads lines
// through a 64 KiB bufio.Reader, checks each with json.Valid and discards it.
type plainReader struct {
	l       net.Listener
	valid   atomic.Int64
	invalid atomic.Int64
	wg      sync.WaitGroup
}

// startPlainReader listens on path and serves until close.
func startPlainReader(path string) (*plainReader, error) {
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	r := &plainReader{l: l}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *plainReader) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.read(c)
	}
}

// read judges every line of one connection until EOF.
func (r *plainReader) read(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var carry []byte // a line longer than the reader's buffer
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			carry = append(carry, line...)
			continue
		}
		if len(carry) > 0 {
			carry = append(carry, line...)
			line = carry
		}
		r.judge(line)
		carry = carry[:0]
		if err != nil {
			return
		}
	}
}

func (r *plainReader) judge(line []byte) {
	switch {
	case len(line) == 0 || (len(line) == 1 && line[0] == '\n'):
	case line[len(line)-1] != '\n': // unterminated at EOF
		r.invalid.Add(1)
	case json.Valid(line[:len(line)-1]):
		r.valid.Add(1)
	default:
		r.invalid.Add(1)
	}
}

// close stops accepting and waits (bounded) for the readers to finish.
func (r *plainReader) close() {
	r.l.Close()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// sendJob is a sendAll running in the background.
type sendJob struct {
	sent atomic.Int64
	done chan struct{}
	err  error
}

// startSend runs sendAll in the background.
func startSend(path string, conns int, n int64, size int, firstID uint64) *sendJob {
	j := &sendJob{done: make(chan struct{})}
	go func() {
		j.err = sendAll(path, conns, int(n), size, firstID, &j.sent)
		close(j.done)
	}()
	return j
}

// failed returns the senders' error once they have ended, nil before.
func (j *sendJob) failed() error {
	select {
	case <-j.done:
		return j.err
	default:
		return nil
	}
}

// wait waits for the senders (each write is bounded by writeTimeout).
func (j *sendJob) wait() error {
	<-j.done
	return j.err
}
