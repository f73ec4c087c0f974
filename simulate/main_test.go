package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestListPrintsOneNamePerLine(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-list"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 11 || lines[0] != "listener-outage-hours" {
		t.Errorf("-list printed %q", out.String())
	}
}

func TestOneSeedPrintsTableAndDigest(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-scenario", "auth-failure", "-seed", "2"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"scenario", "auth-failure", "trace sha256:", "no violations"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	var again bytes.Buffer
	run([]string{"-scenario", "auth-failure", "-seed", "2"}, &again, &errs)
	if digestLine(out.String()) != digestLine(again.String()) {
		t.Errorf("two runs of one seed printed different digests")
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	var out, errs bytes.Buffer
	for _, args := range [][]string{{"-scenario", "no-such"}, {"-nope"}, {"extra"}} {
		if code := run(args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func digestLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "trace sha256:") {
			return l
		}
	}
	return ""
}
