package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/coreos/go-systemd/v22/activation"
)

// errSocketBusy means another daemon answers on the socket path.
var errSocketBusy = errors.New("another process is listening on the socket")

// ingest accepts PHP connections and feeds their lines through core's
// framing decoder into the owner's queue.
type ingest struct {
	cfg       IngestConfig
	log       *slog.Logger
	queue     *ingestQueue
	metrics   *metrics
	recorder  *recorder // nil unless [record] path is set
	listeners []net.Listener
	active    atomic.Int64
	nextConn  atomic.Uint64
	conns     sync.Map // net.Conn -> struct{}, to unblock readers at shutdown
	wg        sync.WaitGroup
	limiter   *rateLimiter
	owned     string // socket path we created and remove at exit
}

// listen opens the Unix socket (or takes the one systemd passed in) and the
// optional loopback TCP listener.
func (in *ingest) listen() error {
	passed, err := activation.Listeners()
	if err != nil {
		return fmt.Errorf("socket activation: %w", err)
	}
	for _, l := range passed {
		if l != nil {
			in.listeners = append(in.listeners, l)
		}
	}
	if len(in.listeners) > 0 {
		in.log.Info("using sockets passed by systemd", "count", len(in.listeners))
	} else if err := in.listenUnix(); err != nil {
		return err
	}
	if in.cfg.TCP != "" {
		l, err := net.Listen("tcp", in.cfg.TCP)
		if err != nil {
			return fmt.Errorf("listen on ingest.tcp %s: %w", in.cfg.TCP, err)
		}
		in.listeners = append(in.listeners, l)
	}
	return nil
}

func (in *ingest) listenUnix() error {
	path := in.cfg.Socket
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	if err := ensureSocketDir(filepath.Dir(path)); err != nil {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false) // we remove it ourselves, once
	in.owned = path
	in.listeners = append(in.listeners, l)
	mode, _ := parseMode(in.cfg.SocketMode)
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("set the socket's mode: %w", err)
	}
	if in.cfg.SocketGroup != "" {
		g, err := user.LookupGroup(in.cfg.SocketGroup)
		if err != nil {
			return fmt.Errorf("ingest.socket_group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			return fmt.Errorf("set the socket's group: %w", err)
		}
	}
	return nil
}

// ensureSocketDir creates the socket's folder if it is missing, searchable
// by everyone (0755): the process umask (077) would otherwise lock PHP out
// of it. An existing folder keeps its mode: that is the operator's choice.
func ensureSocketDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the socket's folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("set the socket folder's mode: %w", err)
	}
	return nil
}

// removeStaleSocket removes a socket file nobody answers on. It refuses a
// path that is not a socket, and a socket another process listens on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: move it away or change ingest.socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s (is another bitville-apmd running?)", errSocketBusy, path)
	}
	return os.Remove(path)
}

// serve accepts on every listener until they are closed.
func (in *ingest) serve() {
	for _, l := range in.listeners {
		in.wg.Add(1)
		go in.accept(l)
	}
}

func (in *ingest) accept(l net.Listener) {
	defer in.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.log.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		if in.active.Add(1) > int64(in.cfg.MaxConnections) {
			in.active.Add(-1)
			in.metrics.connRefused.Inc()
			c.Close()
			continue
		}
		in.wg.Add(1)
		go in.read(c)
	}
}

// read decodes one connection's lines and queues its records.
func (in *ingest) read(c net.Conn) {
	defer in.wg.Done()
	defer in.active.Add(-1)
	in.conns.Store(c, struct{}{})
	defer in.conns.Delete(c)
	defer c.Close()
	id := in.nextConn.Add(1)
	in.recorder.event(core.RecEvent{Kind: core.RecOpen, Conn: id, At: time.Now()})
	dec := core.NewDecoder(in.cfg.MaxRecordBytes)
	buf := make([]byte, in.cfg.ReadBytes)
	var batch readBatch
	for {
		n, err := c.Read(buf)
		if n > 0 {
			in.recorder.event(core.RecEvent{Kind: core.RecData, Conn: id, At: time.Now(), Data: buf[:n]})
			batch.reset(n)
			dec.Feed(buf[:n], func(l core.Line) { in.line(&batch, l) })
			in.flush(&batch)
		}
		if err != nil {
			break
		}
	}
	dec.Close(func(l core.Line) { in.line(&batch, l) })
	in.flush(&batch)
	in.recorder.event(core.RecEvent{Kind: core.RecClose, Conn: id, At: time.Now()})
}

// readBatch collects the records of one socket read. Their bytes are
// copied into one slab (the decoder's slices only live during emit): one
// allocation per read instead of one per record.
type readBatch struct {
	slab []byte
	recs [][]byte
}

func (b *readBatch) reset(n int) {
	b.slab = make([]byte, 0, n)
	b.recs = b.recs[:0]
}

// line handles one decoded line: a record joins the batch, a rejection is
// counted.
func (in *ingest) line(b *readBatch, l core.Line) {
	if l.Reject == "" {
		start := len(b.slab)
		b.slab = append(b.slab, l.Record...)
		b.recs = append(b.recs, b.slab[start:len(b.slab):len(b.slab)])
		return
	}
	in.reject(l.Reject, l.Bytes, 1)
}

// flush hands the batch to the owner's queue; what does not fit is dropped
// and counted as overload, never waited for.
func (in *ingest) flush(b *readBatch) {
	if len(b.recs) == 0 {
		return
	}
	if n := in.queue.pushAll(b.recs); n < len(b.recs) {
		in.reject(core.RejectOverload, len(b.recs[n]), len(b.recs)-n)
	}
	clear(b.recs)
	b.recs = b.recs[:0]
}

// reject counts n rejected lines and logs one, rate-limited, with its
// reason and size but never its contents.
func (in *ingest) reject(reason core.RejectReason, bytes, n int) {
	in.metrics.rejected.WithLabelValues(string(reason)).Add(float64(n))
	if ok, held := in.limiter.allow(string(reason), time.Now()); ok {
		in.log.Warn("line rejected", "reason", reason, "bytes", bytes, "count", n, "similar_suppressed", held)
	}
}

// stop closes the listeners, then gives the readers until ctx ends to
// finish what clients already wrote before cutting them off.
func (in *ingest) stop(ctx context.Context) {
	for _, l := range in.listeners {
		l.Close()
	}
	if in.owned != "" {
		os.Remove(in.owned)
	}
	done := make(chan struct{})
	go func() { in.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	in.conns.Range(func(k, _ any) bool {
		k.(net.Conn).SetReadDeadline(time.Now())
		return true
	})
	<-done
}
