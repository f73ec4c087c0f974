package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/pelletier/go-toml/v2"
)

// Duration is a TOML string such as "250ms" or "5s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"5s\" or \"250ms\": %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText prints the duration back, for check-config.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is config.toml. Every key is documented in the repository's
// config.toml; sizes are bytes, durations strings.
type Config struct {
	Ingest  IngestConfig  `toml:"ingest"`
	Buffer  BufferConfig  `toml:"buffer"`
	Forward ForwardConfig `toml:"forward"`
	Breaker BreakerConfig `toml:"breaker"`
	Admin   AdminConfig   `toml:"admin"`
	Log     LogConfig     `toml:"log"`
	Record  RecordConfig  `toml:"record"`
	Daemon  DaemonConfig  `toml:"daemon"`

	file string // the file it was read from, for messages
}

type IngestConfig struct {
	Socket         string `toml:"socket"`
	SocketMode     string `toml:"socket_mode"`
	SocketGroup    string `toml:"socket_group"`
	MaxRecordBytes int    `toml:"max_record_bytes"`
	MaxConnections int    `toml:"max_connections"`
	QueueBytes     int64  `toml:"queue_bytes"`
	ReadBytes      int    `toml:"read_bytes"`
	TCP            string `toml:"tcp"`
}

type BufferConfig struct {
	Dir             string   `toml:"dir"`
	MemoryRecords   int      `toml:"memory_records"`
	MemoryBytes     int64    `toml:"memory_bytes"`
	MaxMemoryAge    Duration `toml:"max_memory_age"`
	SegmentBytes    int64    `toml:"segment_bytes"`
	DiskBytes       int64    `toml:"disk_bytes"`
	WhenFull        string   `toml:"when_full"`
	QuarantineBytes int64    `toml:"quarantine_bytes"`
	DeadLetterBytes int64    `toml:"dead_letter_bytes"`
	MinFreeBytes    int64    `toml:"min_free_bytes"`
	SpillRetry      Duration `toml:"spill_retry"`
	ReadGiveUp      Duration `toml:"read_give_up"`
}

type ForwardConfig struct {
	URL          string   `toml:"url"`
	APIKey       string   `toml:"api_key"`
	APIKeyFile   string   `toml:"api_key_file"`
	Gzip         bool     `toml:"gzip"`
	GzipLevel    int      `toml:"gzip_level"`
	BatchRecords int      `toml:"batch_records"`
	BatchBytes   int64    `toml:"batch_bytes"`
	Timeout      Duration `toml:"timeout"`
	CAFile       string   `toml:"ca_file"`
	CertFile     string   `toml:"cert_file"`
	KeyFile      string   `toml:"key_file"`
	BackoffMin   Duration `toml:"backoff_min"`
	BackoffMax   Duration `toml:"backoff_max"`
	ConfigRetry  Duration `toml:"config_retry"`
	GrowAfter    int      `toml:"grow_after"`
}

type BreakerConfig struct {
	Failures   int      `toml:"failures"`
	OpenFor    Duration `toml:"open_for"`
	MaxOpenFor Duration `toml:"max_open_for"`
}

type AdminConfig struct {
	Listen string `toml:"listen"`
	Pprof  bool   `toml:"pprof"`
}

type LogConfig struct {
	Level      string   `toml:"level"`
	Format     string   `toml:"format"`
	StatsEvery Duration `toml:"stats_every"`
}

type RecordConfig struct {
	Path     string `toml:"path"`
	MaxBytes int64  `toml:"max_bytes"`
}

type DaemonConfig struct {
	ShutdownTimeout  Duration `toml:"shutdown_timeout"`
	RestartHeapBytes int64    `toml:"restart_heap_bytes"`
}

// DefaultConfig is what a key left out of config.toml gets: the values the
// repository's config.toml spells out (a test keeps the two equal).
func DefaultConfig() Config {
	b := core.DefaultConfig()
	return Config{
		Ingest: IngestConfig{Socket: "var/apmd.sock", SocketMode: "0660", MaxRecordBytes: b.MaxRecordBytes,
			MaxConnections: 1024, QueueBytes: 64 << 20, ReadBytes: 64 << 10},
		Buffer: BufferConfig{Dir: "var/spool", MemoryRecords: b.MemoryRecords, MemoryBytes: b.MemoryBytes,
			MaxMemoryAge: Duration{b.MaxMemoryAge}, SegmentBytes: b.SegmentBytes, DiskBytes: b.DiskBytes,
			WhenFull: string(b.WhenFull), QuarantineBytes: b.QuarantineBytes, DeadLetterBytes: b.DeadLetterBytes,
			MinFreeBytes: b.MinFreeBytes, SpillRetry: Duration{b.SpillRetry}, ReadGiveUp: Duration{b.ReadGiveUp}},
		Forward: ForwardConfig{URL: "http://127.0.0.1:8620/v1/ingest", Gzip: true, GzipLevel: 1,
			BatchRecords: 5000, BatchBytes: 4 << 20, Timeout: Duration{10 * time.Second},
			BackoffMin: Duration{100 * time.Millisecond}, BackoffMax: Duration{30 * time.Second},
			ConfigRetry: Duration{30 * time.Second}, GrowAfter: 10},
		Breaker: BreakerConfig{Failures: 5, OpenFor: Duration{5 * time.Second}, MaxOpenFor: Duration{5 * time.Minute}},
		Admin:   AdminConfig{Listen: "127.0.0.1:8621"},
		Log:     LogConfig{Level: "info", Format: "text", StatsEvery: Duration{time.Minute}},
		Record:  RecordConfig{MaxBytes: 1 << 30},
		Daemon:  DaemonConfig{ShutdownTimeout: Duration{5 * time.Second}},
	}
}

// ConfigError is a configuration problem: the daemon exits 78.
type ConfigError struct {
	File string
	Key  string // "section.key", "" if unknown
	Line int    // 0 if unknown
	Msg  string
}

func (e *ConfigError) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// LoadConfig reads, decodes strictly and validates a config file. Paths in
// it are made relative to the file's folder.
func LoadConfig(file string) (Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Config{}, &ConfigError{File: file, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	cfg, err := ParseConfig(file, data)
	if err != nil {
		return cfg, err
	}
	base, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return cfg, &ConfigError{File: file, Msg: err.Error()}
	}
	cfg.resolvePaths(base)
	return cfg, cfg.Validate()
}

// ParseConfig decodes TOML over the defaults: an unknown key or a wrong
// type is an error naming the key and the line.
func ParseConfig(file string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	cfg.file = file
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(&cfg)
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case errors.As(err, &strict) && len(strict.Errors) > 0:
		e := strict.Errors[0]
		row, _ := e.Position()
		return cfg, &ConfigError{File: file, Key: strings.Join(e.Key(), "."), Line: row, Msg: "unknown key (see config.toml for the keys there are)"}
	case errors.As(err, &de):
		row, _ := de.Position()
		return cfg, &ConfigError{File: file, Key: strings.Join(de.Key(), "."), Line: row, Msg: de.Error()}
	case err != nil:
		return cfg, &ConfigError{File: file, Key: durationKey(data), Msg: err.Error()}
	}
	return cfg, nil
}

// durationKey names the duration key whose value is not a string, such as
// max_memory_age = 200: go-toml hands that value to UnmarshalText and
// returns its error without the key or the line.
func durationKey(data []byte) string {
	var raw map[string]map[string]any
	if toml.Unmarshal(data, &raw) != nil {
		return ""
	}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		sec := t.Field(i)
		if sec.Type.Kind() != reflect.Struct {
			continue
		}
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			v, ok := raw[sec.Tag.Get("toml")][f.Tag.Get("toml")]
			if _, isString := v.(string); ok && !isString && f.Type == reflect.TypeFor[Duration]() {
				return sec.Tag.Get("toml") + "." + f.Tag.Get("toml")
			}
		}
	}
	return ""
}

func (c *Config) resolvePaths(base string) {
	for _, p := range []*string{&c.Ingest.Socket, &c.Buffer.Dir, &c.Forward.APIKeyFile, &c.Forward.CAFile,
		&c.Forward.CertFile, &c.Forward.KeyFile, &c.Record.Path} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

// Validate checks every value and names the first bad key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &ConfigError{File: c.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if _, err := c.BufferConfig(nil); err != nil {
		return c.coreError(err)
	}
	if _, err := c.PolicyConfig(); err != nil {
		return c.coreError(err)
	}
	if err := c.validateIngest(bad); err != nil {
		return err
	}
	if err := c.validateForward(bad); err != nil {
		return err
	}
	return c.validateOps(bad)
}

// coreError turns core's "invalid ...: section.key message" into a
// ConfigError naming the key.
func (c Config) coreError(err error) error {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, ": "); ok && errors.Is(err, core.ErrInvalidConfig) {
		msg = rest
	}
	key, rest, _ := strings.Cut(msg, " ")
	if !strings.Contains(key, ".") {
		return &ConfigError{File: c.file, Msg: msg}
	}
	return &ConfigError{File: c.file, Key: key, Msg: rest}
}

type badFunc func(key, format string, args ...any) error

func (c Config) validateIngest(bad badFunc) error {
	in := c.Ingest
	switch {
	case in.Socket == "":
		return bad("ingest.socket", "must be set")
	case len(in.Socket) > 100:
		return bad("ingest.socket", "path longer than a Unix socket allows (100 bytes): %q", in.Socket)
	case in.MaxConnections < 1:
		return bad("ingest.max_connections", "must be at least 1")
	case in.QueueBytes < int64(in.MaxRecordBytes):
		return bad("ingest.queue_bytes", "must hold at least one record of max_record_bytes (%d)", in.MaxRecordBytes)
	case in.ReadBytes < 512 || in.ReadBytes > 16<<20:
		return bad("ingest.read_bytes", "must be between 512 and 16 MiB")
	}
	if _, err := parseMode(in.SocketMode); err != nil {
		return bad("ingest.socket_mode", "%v", err)
	}
	if in.TCP != "" && !isLoopback(in.TCP) {
		return bad("ingest.tcp", "must be a loopback address such as \"127.0.0.1:8622\", got %q", in.TCP)
	}
	return nil
}

func (c Config) validateForward(bad badFunc) error {
	f := c.Forward
	u, err := url.Parse(f.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return bad("forward.url", "must be an http:// or https:// URL, got %q", f.URL)
	case f.Timeout.Duration <= 0:
		return bad("forward.timeout", "must be positive")
	case f.GzipLevel < 1 || f.GzipLevel > 9:
		return bad("forward.gzip_level", "must be 1 (fastest) to 9 (smallest)")
	case (f.CertFile == "") != (f.KeyFile == ""):
		return bad("forward.cert_file", "cert_file and key_file go together")
	}
	for key, p := range map[string]string{"forward.api_key_file": f.APIKeyFile, "forward.ca_file": f.CAFile,
		"forward.cert_file": f.CertFile, "forward.key_file": f.KeyFile} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return bad(key, "%v", err)
			}
		}
	}
	return nil
}

func (c Config) validateOps(bad badFunc) error {
	switch {
	case !isLoopback(c.Admin.Listen):
		return bad("admin.listen", "must be a loopback address such as \"127.0.0.1:8621\" (the admin endpoints are not for the network), got %q", c.Admin.Listen)
	case c.Log.Format != "text" && c.Log.Format != "json":
		return bad("log.format", "must be \"text\" or \"json\", got %q", c.Log.Format)
	case c.Log.StatsEvery.Duration < 0:
		return bad("log.stats_every", "must not be negative (0 turns the stats line off)")
	case c.Record.Path != "" && c.Record.MaxBytes < 4096:
		return bad("record.max_bytes", "must be at least 4096 when record.path is set")
	case c.Daemon.ShutdownTimeout.Duration <= 0:
		return bad("daemon.shutdown_timeout", "must be positive")
	case c.Daemon.RestartHeapBytes < 0:
		return bad("daemon.restart_heap_bytes", "must not be negative (0 turns it off)")
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level", "%v", err)
	}
	return nil
}

// BufferConfig maps [buffer] and [ingest] onto core's Config.
func (c Config) BufferConfig(entropy interface{ Read([]byte) (int, error) }) (core.Config, error) {
	b := core.DefaultConfig()
	bc := c.Buffer
	b.MemoryRecords, b.MemoryBytes, b.MaxMemoryAge = bc.MemoryRecords, bc.MemoryBytes, bc.MaxMemoryAge.Duration
	b.SegmentBytes, b.DiskBytes, b.WhenFull = bc.SegmentBytes, bc.DiskBytes, core.WhenFull(bc.WhenFull)
	b.QuarantineBytes, b.DeadLetterBytes, b.MinFreeBytes = bc.QuarantineBytes, bc.DeadLetterBytes, bc.MinFreeBytes
	b.SpillRetry, b.ReadGiveUp, b.MaxRecordBytes = bc.SpillRetry.Duration, bc.ReadGiveUp.Duration, c.Ingest.MaxRecordBytes
	b.Entropy = entropy
	if entropy == nil {
		b.Entropy = strings.NewReader("validation only")
	}
	if bc.Dir == "" {
		return b, errors.New("dir must be set")
	}
	return b, b.Validate()
}

// PolicyConfig maps [forward] and [breaker] onto core's delivery policy.
func (c Config) PolicyConfig() (core.PolicyConfig, error) {
	p := core.DefaultPolicyConfig()
	p.BatchRecords, p.BatchBytes = c.Forward.BatchRecords, c.Forward.BatchBytes
	p.Failures, p.OpenFor, p.MaxOpenFor = c.Breaker.Failures, c.Breaker.OpenFor.Duration, c.Breaker.MaxOpenFor.Duration
	p.BackoffMin, p.BackoffMax, p.ConfigRetry = c.Forward.BackoffMin.Duration, c.Forward.BackoffMax.Duration, c.Forward.ConfigRetry.Duration
	p.GrowAfter = c.Forward.GrowAfter
	return p, p.Validate()
}

func parseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 || !strings.HasPrefix(s, "0") {
		return 0, fmt.Errorf("must be an octal mode string such as \"0660\", got %q", s)
	}
	return os.FileMode(v), nil
}

func isLoopback(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
