package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd units pass systemd-analyze verify (with ExecStart pointed at
// a real binary), and keep the promises the README makes about them.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze not found: install systemd (Debian package) to verify the units")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bitville-apmd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	service, _ := os.ReadFile("systemd/bitville-apmd.service")
	socket, _ := os.ReadFile("systemd/bitville-apmd.socket")
	for _, want := range []string{"RestartForceExitStatus=75", "NoNewPrivileges=yes", "ProtectSystem=strict", "User=bitville-apm"} {
		if !strings.Contains(string(service), want) {
			t.Errorf("service lacks %s", want)
		}
	}
	if !strings.Contains(string(socket), "ListenStream=/run/bitville-apm/apmd.sock") {
		t.Error("socket unit does not listen where config.production.toml says")
	}
	unit := strings.ReplaceAll(string(service), "/usr/bin/bitville-apmd", bin)
	os.WriteFile(filepath.Join(dir, "bitville-apmd.service"), []byte(unit), 0o644)
	os.WriteFile(filepath.Join(dir, "bitville-apmd.socket"), socket, 0o644)
	cmd := exec.Command(analyze, "verify", filepath.Join(dir, "bitville-apmd.socket"), filepath.Join(dir, "bitville-apmd.service"))
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The production config is strict-valid once its key file exists.
func TestProductionConfigValid(t *testing.T) {
	data, err := os.ReadFile("systemd/config.production.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("config.production.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ingest.Socket != "/run/bitville-apm/apmd.sock" || cfg.Buffer.Dir != "/var/lib/bitville-apm/spool" {
		t.Fatalf("paths %q %q", cfg.Ingest.Socket, cfg.Buffer.Dir)
	}
	key := filepath.Join(t.TempDir(), "api.key")
	os.WriteFile(key, []byte("k"), 0o600)
	cfg.Forward.APIKeyFile = key
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The README's PHP snippet is the function the PHP end-to-end test runs.
func TestReadmePHPSnippetIsTested(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	client, err := os.ReadFile("testdata/client.php")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```php\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || !strings.Contains(block, "function bitville_apm_send") || !strings.Contains(string(client), block) {
		t.Fatalf("README's PHP snippet differs from testdata/client.php:\n%s", block)
	}
}
