package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// The repository's config.toml runs as it is, and says what the defaults say
// where the two overlap.
func TestRepositoryConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("..")
	if cfg.Buffer.Dir != filepath.Join(abs, "var/spool") || cfg.Ingest.Socket != filepath.Join(abs, "var/apmd.sock") {
		t.Fatalf("paths not resolved against the config's folder: %q %q", cfg.Buffer.Dir, cfg.Ingest.Socket)
	}
	if cfg.Forward.URL != "http://127.0.0.1:8620/v1/ingest" || cfg.Admin.Listen != "127.0.0.1:8621" {
		t.Fatalf("listener %q admin %q", cfg.Forward.URL, cfg.Admin.Listen)
	}
	if cfg.Buffer.MaxMemoryAge.Duration != time.Second || cfg.Ingest.SocketMode != "0660" {
		t.Fatalf("max_memory_age %s socket_mode %s", cfg.Buffer.MaxMemoryAge, cfg.Ingest.SocketMode)
	}
}

// Leaving a key out of config.toml gives the value the repository's
// config.toml writes down: the file is the documentation of the defaults.
func TestDefaultsMatchRepositoryConfig(t *testing.T) {
	fromFile, err := LoadConfig("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.toml")
	os.WriteFile(empty, nil, 0o600)
	defaults, err := LoadConfig(empty)
	if err != nil {
		t.Fatal(err)
	}
	defaults.file, fromFile.file = "", ""
	defaults.resolvePaths(filepath.Dir(empty)) // already absolute: no change
	a, _ := toml.Marshal(fromFile)
	b, _ := toml.Marshal(defaults)
	if la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n"); len(la) == len(lb) {
		for i := range la {
			if la[i] != lb[i] && !strings.Contains(la[i], "var/") {
				t.Errorf("config.toml says %s, the default is %s", la[i], lb[i])
			}
		}
	} else {
		t.Fatalf("different shapes:\n%s\n---\n%s", a, b)
	}
}

func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, toml, key string
		line            int
		msg             string
	}{
		{"unknown key", "[buffer]\nmemory_records = 5\nmemroy_bytes = 5\n", "buffer.memroy_bytes", 3, "unknown key"},
		{"unknown section", "[bufer]\ndir = \"x\"\n", "bufer", 1, "unknown key"},
		{"wrong type", "[buffer]\nmemory_records = \"many\"\n", "buffer.memory_records", 2, ""},
		{"bad duration", "[buffer]\nmax_memory_age = \"soon\"\n", "buffer.max_memory_age", 2, "duration"},
		{"syntax", "[buffer\n", "", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("test.toml", []byte(tc.toml))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a ConfigError", err)
			}
			if ce.Key != tc.key || ce.Line != tc.line || !strings.Contains(ce.Error(), tc.msg) || !strings.HasPrefix(ce.Error(), "test.toml") {
				t.Fatalf("got key %q line %d: %v", ce.Key, ce.Line, err)
			}
		})
	}
}

func TestConfigValidationNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ toml, key string }{
		{"[buffer]\nwhen_full = \"drop_random\"\n", "when_full"},
		{"[buffer]\nmemory_records = 0\n", "memory_records"},
		{"[buffer]\ndisk_bytes = 10\n", "disk_bytes"},
		{"[ingest]\nsocket_mode = \"660\"\n", "ingest.socket_mode"},
		{"[ingest]\ntcp = \"0.0.0.0:9000\"\n", "ingest.tcp"},
		{"[ingest]\nqueue_bytes = 10\n", "ingest.queue_bytes"},
		{"[admin]\nlisten = \"0.0.0.0:8621\"\n", "admin.listen"},
		{"[forward]\nurl = \"ftp://x\"\n", "forward.url"},
		{"[forward]\napi_key_file = \"missing.key\"\n", "forward.api_key_file"},
		{"[forward]\ncert_file = \"c.pem\"\n", "forward.cert_file"},
		{"[breaker]\nfailures = 0\n", "failures"},
		{"[log]\nlevel = \"loud\"\n", "log.level"},
		{"[log]\nformat = \"xml\"\n", "log.format"},
		{"[record]\npath = \"r.rec\"\nmax_bytes = 10\n", "record.max_bytes"},
	} {
		file := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(file, []byte(tc.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(file)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v does not name %s", tc.toml, err, tc.key)
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.toml"))
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "none.toml") {
		t.Fatalf("error %v", err)
	}
}
