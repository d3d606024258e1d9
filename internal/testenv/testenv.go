// Package testenv holds the one rule every test follows about its
// environment: a test that needs something the machine lacks — root, a
// network namespace, a program such as tshark or hping3 — skips with the
// reason outside CI, and fails in CI (where the environment variable CI
// is "true"), which must provide everything.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI: the environment variable CI
// is "true".
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends t for want of what the message names: it skips t
// outside CI and fails it in CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true, so this fails rather than skips)", msg)
		return
	}
	t.Skip("skipping: " + msg)
}

// Tool returns the path of the program name, or ends t through
// Unavailable, saying that the Debian package pkg has it.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s is not installed: apt-get install %s", name, pkg)
	}
	return path
}
