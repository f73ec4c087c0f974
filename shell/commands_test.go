package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitville/apmd/core"
	"github.com/bitville/apmd/fsadapter"
)

// commandEnv writes a config whose spool holds 10 records in two segments
// and one dead-lettered record, and returns the config path and spool dir.
func commandEnv(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	cfgFile := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgFile, []byte("[buffer]\ndir = \"spool\"\nsegment_bytes = 1024\n[forward]\napi_key = \"hunter2\"\n"), 0o600)
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	bcfg, _ := cfg.BufferConfig(rand.Reader)
	now := time.Now()
	buf, _, err := core.Open(fsadapter.NewOS(spool), "/", bcfg, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 11 {
		buf.Add([]byte(`{"correlation_id":"r`+strings.Repeat("x", 80)+string(rune('a'+i))+`"}`), now)
	}
	buf.Next(1, 1<<20, now)
	buf.DeadLetter(core.DropPoison, now)
	if err := buf.Shutdown(now); err != nil {
		t.Fatal(err)
	}
	return cfgFile, spool
}

func TestCheckConfigMasksSecrets(t *testing.T) {
	cfgFile, _ := commandEnv(t)
	var out bytes.Buffer
	if code := runCheckConfig([]string{"-config", cfgFile}, &out); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "api_key = '***'") {
		t.Fatalf("secret not masked:\n%s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[buffer]\nwhen_full = \"maybe\"\n"), 0o600)
	if code := runCheckConfig([]string{"-config", bad}, &out); code != exitConfig {
		t.Fatalf("bad config: exit %d, want 78", code)
	}
}

func TestInspectVerifyFindsDamage(t *testing.T) {
	cfgFile, spool := commandEnv(t)
	var out bytes.Buffer
	if code := runInspect([]string{"-config", cfgFile, "-verify"}, &out); code != exitOK {
		t.Fatalf("clean spool: exit %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "records            10") || !strings.Contains(out.String(), "every CRC checks out") {
		t.Fatalf("inspect output:\n%s", out.String())
	}
	seg := filepath.Join(spool, "00000000000000000002.seg")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[300] ^= 0xFF
	os.WriteFile(seg, data, 0o600)
	out.Reset()
	if code := runInspect([]string{"-config", cfgFile, "-verify"}, &out); code != exitNotSaved {
		t.Fatalf("damaged spool: exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "DAMAGED "+seg) || !strings.Contains(out.String(), "offset") {
		t.Fatalf("damage not named:\n%s", out.String())
	}
}

func TestRequeueCommand(t *testing.T) {
	cfgFile, spool := commandEnv(t)
	lock, err := lockSpool(spool)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := runRequeue([]string{"-config", cfgFile}, &out); code != exitSpoolLocked {
		t.Fatalf("while locked: exit %d, want 73", code)
	}
	lock.Close()
	if code := runRequeue([]string{"-config", cfgFile, "-dead-letter"}, &out); code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "requeued 1 records from 1 files") {
		t.Fatalf("output: %s", out.String())
	}
	left, _ := os.ReadDir(filepath.Join(spool, "dead-letter"))
	if len(left) != 0 {
		t.Fatalf("%d dead-letter files left", len(left))
	}
}
