package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/admin"
	"github.com/tcpstate/tcpstate/internal/stacktest"
	"github.com/tcpstate/tcpstate/link/pipe"
	"github.com/tcpstate/tcpstate/tcp"
)

// adminPair runs a server stack with an echo listener on port 80 and its
// admin endpoint, and a client stack with one connection to it that the
// client has closed (TIME-WAIT on the client) and one left open. It
// returns the admin endpoint's host:port.
func adminPair(t *testing.T) string {
	t.Helper()
	client, server := stacktest.Pair(t, pipe.Config{}, nil)
	stacktest.Echo(t, server, ":80")
	srv := httptest.NewServer(admin.New(server, admin.Options{}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if _, err := client.DialContext(ctx, "tcp", "10.0.0.2:80"); err != nil {
			t.Fatal(err)
		}
	}
	// Let the server's side of both settle in ESTABLISHED.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, r := range server.Table(time.Now()) {
			if r.State == tcp.Established {
				n++
			}
		}
		if n == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestConnsCommand: conns prints ss's columns, a row per connection with
// the states, the listener, and a count per state; --state filters in
// any spelling; --json is the admin table; --watch refreshes.
func TestConnsCommand(t *testing.T) {
	addr := adminPair(t)
	code, out, errs := runCmd("conns", "--admin", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Timer",
		"LISTEN", "ESTABLISHED", "10.0.0.2:80", "Total: 3 (LISTEN 1, ESTABLISHED 2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"estab", "ESTABLISHED", "established"} {
		_, out, _ := runCmd("conns", "--admin", addr, "--state", name)
		if strings.Contains(out, "\nLISTEN") || strings.Count(out, "\nESTABLISHED") != 2 {
			t.Errorf("--state %s:\n%s", name, out)
		}
	}
	code, out, _ = runCmd("conns", "--admin", addr, "--json")
	var tab admin.Table
	if code != 0 || json.Unmarshal([]byte(out), &tab) != nil || len(tab.Conns) != 3 {
		t.Errorf("--json: exit %d, %d rows:\n%s", code, len(tab.Conns), out)
	}
	code, out, _ = runCmd("conns", "--admin", addr, "--watch", "--interval", "10ms", "--count", "2")
	if code != 0 || strings.Count(out, "\x1b[2J") != 2 {
		t.Errorf("--watch --count 2: exit %d, %d refreshes", code, strings.Count(out, "\x1b[2J"))
	}
	code, _, errs = runCmd("conns", "--admin", addr, "--state", "nonsense")
	if code == 0 || !strings.Contains(errs, "unknown state") {
		t.Errorf("--state nonsense: exit %d, %q", code, errs)
	}
	code, _, errs = runCmd("conns")
	if code == 0 || !strings.Contains(errs, "--admin is required") {
		t.Errorf("no --admin: exit %d, %q", code, errs)
	}
}

// TestStatsCommand: stats prints RFC 4022's counters with their values.
func TestStatsCommand(t *testing.T) {
	addr := adminPair(t)
	code, out, errs := runCmd("stats", "--admin", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"ActiveOpens", "AttemptFails", "EstabResets", "InSegs", "RetransSegs", "InErrs", "OutRsts",
		"bad_checksum", "no_listener", "TIME-WAIT"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var passive, estab string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "PassiveOpens" {
			passive = f[1]
		}
		if len(f) == 2 && f[0] == "CurrEstab" {
			estab = f[1]
		}
	}
	if passive != "2" || estab != "2" {
		t.Errorf("PassiveOpens %q CurrEstab %q, want 2 and 2:\n%s", passive, estab, out)
	}
}
