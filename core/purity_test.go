package core

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports may not appear in core's non-test code (DESIGN 3): all
// I/O goes through the afero.Fs core is given, time and randomness come in
// from the host, and one owner drives core without locks.
var forbiddenImports = map[string]string{
	"os": "file I/O goes through afero.Fs", "net": "the shell does networking",
	"syscall": "the shell does system calls", "os/signal": "the shell handles signals",
	"log": "core returns errors; the host logs", "log/slog": "core returns errors; the host logs",
	"sync": "one owner drives core: no locks", "sync/atomic": "one owner drives core: no locks",
	"math/rand": "randomness comes from a source the host gives", "math/rand/v2": "randomness comes from a source the host gives",
	"unsafe": "core must build anywhere, wasip1 included", "os/exec": "the shell runs processes",
}

// forbiddenCalls read a clock or start timers.
var forbiddenCalls = map[string]bool{
	"time.Now": true, "time.Since": true, "time.Until": true, "time.Sleep": true, "time.After": true,
	"time.Tick": true, "time.NewTimer": true, "time.NewTicker": true, "time.AfterFunc": true,
}

// impurities lists the ways a Go source breaks core's purity rules.
func impurities(fset *token.FileSet, file *ast.File) []string {
	var out []string
	for _, imp := range file.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if why, bad := forbiddenImports[p]; bad || strings.HasPrefix(p, "net/") || strings.HasPrefix(p, "os/") {
			out = append(out, fmt.Sprintf("%s: imports %s (%s)", fset.Position(imp.Pos()), p, why))
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, fmt.Sprintf("%s: starts a goroutine", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && forbiddenCalls[id.Name+"."+n.Sel.Name] {
				out = append(out, fmt.Sprintf("%s: uses %s.%s (time comes in as an argument)", fset.Position(n.Pos()), id.Name, n.Sel.Name))
			}
		}
		return true
	})
	return out
}

func TestCoreIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources found (%v): run from core/", err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, p := range impurities(fset, f) {
			t.Error(p)
		}
	}
	if checked < 5 {
		t.Fatalf("only %d sources checked", checked)
	}
}

// go list sees what the build really imports (build tags included). A
// wasip1 guest cannot run processes; the source scan above covers it there.
func TestCoreImportsPerGoList(t *testing.T) {
	if runtime.GOOS == "wasip1" {
		t.Skip("wasip1 cannot start go list; TestCoreIsPure scans the same sources")
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v (is go on PATH?)", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if why, bad := forbiddenImports[p]; bad || strings.HasPrefix(p, "net/") || strings.HasPrefix(p, "os/") {
			t.Errorf("core imports %s: %s", p, why)
		}
		if strings.Contains(p, ".") && p != "github.com/spf13/afero" {
			t.Errorf("core imports %s: only afero and small pure libraries are allowed; add it here after checking it builds for wasip1 and reads no clock", p)
		}
	}
}

// The checker itself catches what it should.
func TestPurityCheckCatchesViolations(t *testing.T) {
	src := `package core
import (
	"os"
	"sync"
	"time"
)
func f() { go func() {}(); _ = time.Now(); var mu sync.Mutex; _ = mu; os.Exit(1) }`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "planted.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := impurities(fset, f)
	if len(got) != 4 { // os, sync, go, time.Now
		t.Fatalf("found %d impurities, want 4: %v", len(got), got)
	}
}
