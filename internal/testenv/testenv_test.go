package testenv

import (
	"os"
	"testing"
)

// fakeT records how a test would have ended.
type fakeT struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Skip(args ...any)               { f.skipped = true; f.msg = args[0].(string) }
func (f *fakeT) Fatalf(format string, _ ...any) { f.failed = true; f.msg = format }

func TestUnavailable(t *testing.T) {
	t.Setenv("CI", "")
	var f fakeT
	Tool(&f, "no-such-program-tcpstate", "nothing")
	if !f.skipped || f.failed {
		t.Fatalf("outside CI a missing tool must skip: %+v", f)
	}
	t.Setenv("CI", "true")
	f = fakeT{}
	Tool(&f, "no-such-program-tcpstate", "nothing")
	if !f.failed || f.skipped {
		t.Fatalf("in CI a missing tool must fail: %+v", f)
	}
	f = fakeT{}
	sh := Tool(&f, "sh", "dash")
	if f.failed || f.skipped || sh == "" {
		t.Fatalf("sh is there: %q %+v", sh, f)
	}
	if _, err := os.Stat(sh); err != nil {
		t.Fatal(err)
	}
}
