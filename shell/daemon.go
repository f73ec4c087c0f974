package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// daemon is everything one run holds.
type daemon struct {
	cfg      Config
	log      *slog.Logger
	buf      *core.Buffer
	policy   *core.Policy
	ingest   *ingest
	forward  *forwarder
	key      *apiKey
	admin    *admin
	metrics  *metrics
	recorder *recorder
	lock     *os.File
}

func runDaemon(args []string) int {
	fs := flag.NewFlagSet("bitville-apmd", flag.ContinueOnError)
	configFile := fs.String("config", defaultConfigFile, "the configuration file")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, err := LoadConfig(*configFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bitville-apmd: configuration error: %v\n", err)
		return exitConfig
	}
	log := newLogger(os.Stderr, cfg.Log)
	syscall.Umask(0o077) // spool files 0600, folders 0700; the socket's mode is set explicitly
	d, code := start(cfg, log)
	if d == nil {
		return code
	}
	return d.run()
}

// start takes the lock, opens the spool and the sockets. On failure it
// returns the exit code to use.
func start(cfg Config, log *slog.Logger) (*daemon, int) {
	d := &daemon{cfg: cfg, log: log, metrics: newMetrics()}
	// The socket's folder first: when it is a parent of the spool (./var
	// in the default config) it must be created 0755, not 0700.
	if err := ensureSocketDir(filepath.Dir(cfg.Ingest.Socket)); err != nil {
		log.Error("cannot create the socket's folder: check ingest.socket", "err", err)
		return nil, exitConfig
	}
	if err := os.MkdirAll(cfg.Buffer.Dir, 0o700); err != nil {
		log.Error("cannot create the spool folder: check buffer.dir and its permissions", "dir", cfg.Buffer.Dir, "err", err)
		return nil, exitConfig
	}
	lock, err := lockSpool(cfg.Buffer.Dir)
	if err != nil {
		log.Error("spool is locked by another daemon: stop it or use another buffer.dir", "dir", cfg.Buffer.Dir, "err", err)
		return nil, exitSpoolLocked
	}
	d.lock = lock
	if code, err := d.open(); err != nil {
		log.Error("cannot start", "err", err)
		d.release()
		return nil, code
	}
	return d, exitOK
}

// open builds core, the forwarder, the sockets and the admin server.
func (d *daemon) open() (int, error) {
	bcfg, _ := d.cfg.BufferConfig(randReader())
	pcfg, _ := d.cfg.PolicyConfig()
	buf, rep, err := core.Open(fsadapter.NewOS(d.cfg.Buffer.Dir), "/", bcfg, time.Now())
	var uv *core.UnknownVersionError
	if errors.As(err, &uv) {
		return exitConfig, err
	} else if err != nil {
		return exitNotSaved, fmt.Errorf("open spool %s: %w", d.cfg.Buffer.Dir, err)
	}
	d.buf = buf
	d.logRecovery(rep)
	if d.policy, err = core.NewPolicy(pcfg, randReader()); err != nil {
		return exitConfig, err
	}
	if d.key, err = newAPIKey(d.cfg.Forward); err != nil {
		return exitConfig, err
	}
	if d.forward, err = newForwarder(d.cfg.Forward, rep.AgentID, d.key); err != nil {
		return exitConfig, err
	}
	if d.recorder, err = openRecorder(d.cfg.Record, d.log); err != nil {
		return exitConfig, err
	}
	d.ingest = &ingest{cfg: d.cfg.Ingest, log: d.log, queue: newIngestQueue(d.cfg.Ingest.QueueBytes),
		metrics: d.metrics, recorder: d.recorder, limiter: newRateLimiter(10 * time.Second)}
	d.ingest.nextConn.Store(d.recorder.connBase())
	if err := d.ingest.listen(); err != nil {
		if errors.Is(err, errSocketBusy) {
			return exitSpoolLocked, err
		}
		return exitConfig, err
	}
	if d.admin, err = startAdmin(d.cfg.Admin, d.metrics, d.log); err != nil {
		d.ingest.stop(expired())
		return exitConfig, err
	}
	return exitOK, nil
}

func (d *daemon) logRecovery(rep core.Report) {
	d.log.Info("spool opened", "dir", d.cfg.Buffer.Dir, "agent", rep.AgentID, "segments", rep.Segments,
		"records", rep.Records, "bytes", rep.Bytes, "temp_files_removed", rep.TempFilesRemoved)
	switch {
	case rep.NewAgent && rep.NewAgentReason == "new spool":
		d.log.Info("new spool: new agent ID", "agent", rep.AgentID)
	case rep.NewAgent:
		d.log.Warn("spool.meta unusable: new agent ID, numbering continues above the backlog", "agent", rep.AgentID, "why", rep.NewAgentReason)
	}
	if rep.CorruptRecords > 0 || len(rep.Quarantined) > 0 {
		d.log.Error("damaged segments salvaged", "records_lost", rep.CorruptRecords, "quarantined", rep.Quarantined)
	}
	if len(rep.SalvageDeferred) > 0 {
		d.log.Error("damaged segments not salvaged yet (disk full or failing?); retried at the next start", "files", rep.SalvageDeferred)
	}
	if len(rep.UnknownFiles) > 0 {
		d.log.Warn("files in the spool that are not ours, left alone", "files", rep.UnknownFiles)
	}
}

// randReader is the entropy for agent IDs and jitter.
func randReader() io.Reader { return rand.Reader }

// lockSpool takes an exclusive lock on spool.lock, held until exit.
func lockSpool(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "spool.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

func (d *daemon) release() {
	d.recorder.close()
	if d.lock != nil {
		d.lock.Close()
	}
}

// signals routes the process's signals to the owner loop.
func signals() chan os.Signal {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2, syscall.SIGHUP)
	return ch
}
