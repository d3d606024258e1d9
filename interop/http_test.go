//go:build linux

package interop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/netns"
)

// bigBody is the large download: 50 MB.
const bigBody = 50_000_000

// curl runs curl in ns against url, streaming the body into body, and
// returns curl's stderr and error. curl gives up after maxTime.
func curl(t *testing.T, ns *netns.NS, url string, body io.Writer, maxTime time.Duration) (string, error) {
	t.Helper()
	cmd := command(t, ns, "curl", "--silent", "--show-error", "--fail",
		"--noproxy", "*", "--max-time", fmt.Sprint(maxTime.Seconds()), "--output", "-", url)
	cmd.Stdout = body
	var stderr syncBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.String(), err
}

// TestCurl: the kernel's curl against `tcpstate serve --app http`: GET /
// answers "ok\n", and /bytes/N for small N and for 50 MB arrives byte for
// byte.
func TestCurl(t *testing.T) {
	need(t, "curl", "curl")
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 80, "http")

	var root syncBuffer
	if stderr, err := curl(t, ns, "http://"+stack0+"/", &root, 10*time.Second); err != nil {
		t.Fatalf("curl http://%s/: %v: %s", stack0, err, stderr)
	}
	if got := root.String(); got != "ok\n" {
		t.Errorf("GET / = %q, want %q", got, "ok\n")
	}

	for _, n := range []int64{0, 1, 250, 251, 1460, 100_000, bigBody} {
		start := time.Now()
		url := fmt.Sprintf("http://%s/bytes/%d", stack0, n)
		w := newPatternChecker()
		if stderr, err := curl(t, ns, url, w, 40*time.Second); err != nil {
			t.Fatalf("curl %s: %v: %s (after %d bytes)", url, err, stderr, w.n)
		}
		w.check(t, "curl "+url, n)
		if n == bigBody {
			d := time.Since(start)
			t.Logf("curl: %d bytes in %v (%.0f Mbit/s)", n, d.Round(time.Millisecond), float64(n)*8/d.Seconds()/1e6)
		}
	}
}

// TestGoHTTP: Go's HTTP client on kernel sockets made in the namespace
// against `tcpstate serve --app http`, the same bodies as TestCurl, over
// one kept-alive connection.
func TestGoHTTP(t *testing.T) {
	ns := newNS(t, dev0)
	startServe(t, ns, dev0, stack0CIDR, 80, "http")
	tr := &http.Transport{DialContext: dialer{ns: ns}.dialContext, Proxy: nil, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 50 * time.Second}

	get := func(path string, body io.Writer) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+stack0+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if _, err := io.Copy(body, resp.Body); err != nil {
			t.Fatalf("GET %s: reading the body: %v", path, err)
		}
	}

	var root strings.Builder
	get("/", &root)
	if root.String() != "ok\n" {
		t.Errorf("GET / = %q, want %q", root.String(), "ok\n")
	}
	for _, n := range []int64{0, 1, 1460, 100_000, bigBody} {
		path := fmt.Sprintf("/bytes/%d", n)
		w := newPatternChecker()
		start := time.Now()
		get(path, w)
		w.check(t, "GET "+path, n)
		if n == bigBody {
			d := time.Since(start)
			t.Logf("Go client: %d bytes in %v (%.0f Mbit/s)", n, d.Round(time.Millisecond), float64(n)*8/d.Seconds()/1e6)
		}
	}
}
