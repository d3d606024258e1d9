package track

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Thresholds for Diagnose. Zero fields take the Default* values.
type Thresholds struct {
	// SynFlood: at least this many connections in SYN-RECEIVED at one
	// server endpoint, from at least SynFloodSources client addresses or
	// ports.
	SynFlood, SynFloodSources int
	// CloseWait: a connection whose endpoint has been in CLOSE-WAIT at
	// least this long without sending its FIN.
	CloseWait time.Duration
	// TimeWait: at least this many TIME-WAIT connections between one
	// client address and one server endpoint (or at one server endpoint).
	TimeWait int
	// RSTStorm: at least this many connections to one server endpoint
	// ended by an RST.
	RSTStorm int
	// Retrans: a direction with at least this many retransmissions that
	// make at least RetransRatio of its packets.
	Retrans      int
	RetransRatio float64
	// ZeroWindow: at least this many zero-window advertisements by one
	// receiver.
	ZeroWindow int
}

// The default thresholds.
const (
	DefaultSynFlood        = 32
	DefaultSynFloodSources = 16
	DefaultCloseWait       = 10 * time.Second
	DefaultTimeWaitPileup  = 100
	DefaultRSTStorm        = 20
	DefaultRetrans         = 3
	DefaultRetransRatio    = 0.02
	DefaultZeroWindow      = 3
)

// EphemeralPorts is the size of Linux's default ephemeral port range,
// net.ipv4.ip_local_port_range = 32768..60999.
const EphemeralPorts = 60999 - 32768 + 1

func (t *Thresholds) fill() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.SynFlood, DefaultSynFlood)
	def(&t.SynFloodSources, DefaultSynFloodSources)
	def(&t.TimeWait, DefaultTimeWaitPileup)
	def(&t.RSTStorm, DefaultRSTStorm)
	def(&t.Retrans, DefaultRetrans)
	def(&t.ZeroWindow, DefaultZeroWindow)
	if t.CloseWait <= 0 {
		t.CloseWait = DefaultCloseWait
	}
	if t.RetransRatio <= 0 {
		t.RetransRatio = DefaultRetransRatio
	}
}

// Finding is one thing Diagnose found wrong.
type Finding struct {
	// Kind is one of syn-flood, close-wait-leak, time-wait-pileup,
	// half-open, rst-storm, retransmissions, zero-window.
	Kind string `json:"kind"`
	// Endpoint is the endpoint concerned ("IP:PORT").
	Endpoint string `json:"endpoint"`
	// Count is how many connections (or segments) the finding covers.
	Count int `json:"count"`
	// Message says what is wrong in plain words.
	Message string `json:"message"`
}

// The finding kinds.
const (
	KindSynFlood       = "syn-flood"
	KindCloseWaitLeak  = "close-wait-leak"
	KindTimeWaitPileup = "time-wait-pileup"
	KindHalfOpen       = "half-open"
	KindRSTStorm       = "rst-storm"
	KindRetrans        = "retransmissions"
	KindZeroWindow     = "zero-window"
)

// FindingKinds lists every kind, in the order Diagnose reports them.
var FindingKinds = []string{KindSynFlood, KindCloseWaitLeak, KindTimeWaitPileup, KindHalfOpen, KindRSTStorm, KindRetrans, KindZeroWindow}

// Diagnose looks at a snapshot taken at instant at and reports findings,
// ordered by kind then endpoint. span is the capture's duration so far
// (for rates).
func Diagnose(views []ConnView, at time.Time, span time.Duration, th Thresholds) []Finding {
	th.fill()
	var out []Finding
	type group struct {
		n       int
		sources map[netip.Addr]bool
		ports   map[uint16]bool
	}
	synRcvd := map[netip.AddrPort]*group{}
	twPair := map[[2]string]int{}
	twServer := map[netip.AddrPort]int{}
	rsts := map[netip.AddrPort]int{}
	conns := map[netip.AddrPort]int{}
	for i := range views {
		v := &views[i]
		conns[v.Server]++
		if v.ServerState == tcp.SynReceived {
			g := synRcvd[v.Server]
			if g == nil {
				g = &group{sources: map[netip.Addr]bool{}, ports: map[uint16]bool{}}
				synRcvd[v.Server] = g
			}
			g.n++
			g.sources[v.Client.Addr()] = true
			g.ports[v.Client.Port()] = true
		}
		if v.ClientState == tcp.TimeWait {
			twPair[[2]string{v.Client.Addr().String(), v.Server.String()}]++
		}
		if v.ServerState == tcp.TimeWait {
			twServer[v.Server]++
		}
		if v.RSTs[C2S]+v.RSTs[S2C] > 0 && v.Ended {
			rsts[v.Server]++
		}
		for d, st := range [2]tcp.State{v.ClientState, v.ServerState} {
			ep := v.Client
			if d == 1 {
				ep = v.Server
			}
			if st == tcp.CloseWait && !v.CloseWaitSince.IsZero() && at.Sub(v.CloseWaitSince) >= th.CloseWait {
				out = append(out, Finding{KindCloseWaitLeak, ep.String(), 1, fmt.Sprintf(
					"%s has been in CLOSE-WAIT for %s on its connection with %s: its peer closed, and the application "+
						"has not closed its socket (it will stay there until it does; look for a missing close())",
					ep, at.Sub(v.CloseWaitSince).Round(time.Second), peerOf(v, d))})
			}
		}
		for d := range 2 {
			sender, peer := v.Client, v.Server
			if d == S2C {
				sender, peer = v.Server, v.Client
			}
			if v.HalfOpen[d] {
				out = append(out, Finding{KindHalfOpen, peer.String(), 1, fmt.Sprintf(
					"%s answered data from %s with a bare RST: it has no such connection (it restarted, or its state "+
						"was lost), so %s was talking to a half-open connection", sender, peer, peer)})
			}
			if r := v.Retrans[d]; r >= uint64(th.Retrans) && v.Packets[d] > 0 &&
				float64(r)/float64(v.Packets[d]) >= th.RetransRatio {
				out = append(out, Finding{KindRetrans, sender.String(), int(r), fmt.Sprintf(
					"%s retransmitted %d of its %d segments to %s (%.1f%%): packets from it are being lost on the way "+
						"(or its ACKs from %s are)", sender, r, v.Packets[d], peer, 100*float64(r)/float64(v.Packets[d]), peer)})
			}
			if z := v.ZeroWindow[d]; z >= uint64(th.ZeroWindow) {
				out = append(out, Finding{KindZeroWindow, sender.String(), int(z), fmt.Sprintf(
					"%s advertised a zero window %d times to %s: its application stopped reading, so %s cannot send",
					sender, z, peer, peer)})
			}
		}
	}
	for ep, g := range synRcvd {
		if g.n >= th.SynFlood && (len(g.sources) >= th.SynFloodSources || len(g.ports) >= th.SynFloodSources) {
			out = append(out, Finding{KindSynFlood, ep.String(), g.n, fmt.Sprintf(
				"%d connections to %s are half-open in SYN-RECEIVED, from %d addresses and %d ports: their SYNs were "+
					"answered but the handshakes never completed (a SYN flood, or clients that cannot receive the "+
					"SYN,ACK); Linux keeps each for its SYN,ACK retries and falls back to SYN cookies when the queue is full",
				g.n, ep, len(g.sources), len(g.ports))})
		}
	}
	rate := func(n int) string {
		if span <= 0 {
			return ""
		}
		return fmt.Sprintf("; the capture shows %.1f new connections/s", float64(n)/span.Seconds())
	}
	for k, n := range twPair {
		if n >= th.TimeWait {
			limit := float64(EphemeralPorts) / DefaultTimeWait.Seconds()
			out = append(out, Finding{KindTimeWaitPileup, k[1], n, fmt.Sprintf(
				"client %s holds %d connections to %s in TIME-WAIT; each keeps its port for %s, so with %d "+
					"ephemeral ports it can open at most %d/%.0f = %.0f new connections/s to %s (%.0f%% of the ports "+
					"in use now)%s; reuse connections, or spread over more addresses",
				k[0], n, k[1], DefaultTimeWait, EphemeralPorts, EphemeralPorts, DefaultTimeWait.Seconds(), limit, k[1],
				100*float64(n)/EphemeralPorts, rate(n))})
		}
	}
	for ep, n := range twServer {
		if n >= th.TimeWait {
			out = append(out, Finding{KindTimeWaitPileup, ep.String(), n, fmt.Sprintf(
				"server %s holds %d connections in TIME-WAIT: it closes first; each costs a little memory but no port "+
					"(each has its own client address and port), and a client reusing a port in TIME-WAIT needs a "+
					"higher sequence number%s", ep, n, rate(n))})
		}
	}
	for ep, n := range rsts {
		if n >= th.RSTStorm {
			out = append(out, Finding{KindRSTStorm, ep.String(), n, fmt.Sprintf(
				"%d of the %d connections with %s ended with an RST rather than a FIN exchange: refused, aborted or "+
					"reset connections", n, conns[ep], ep)})
		}
	}
	order := map[string]int{}
	for i, k := range FindingKinds {
		order[k] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return order[out[i].Kind] < order[out[j].Kind]
		}
		return out[i].Endpoint < out[j].Endpoint
	})
	return out
}

func peerOf(v *ConnView, d int) netip.AddrPort {
	if d == 0 {
		return v.Server
	}
	return v.Client
}

// WriteFindings writes findings as a table.
func WriteFindings(w io.Writer, fs []Finding) error {
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tENDPOINT\tCOUNT\tMESSAGE")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Kind, f.Endpoint, f.Count, f.Message)
	}
	return tw.Flush()
}

// WriteFindingsJSON writes one JSON object per line per finding.
func WriteFindingsJSON(w io.Writer, fs []Finding) error {
	enc := json.NewEncoder(w)
	for _, f := range fs {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}
