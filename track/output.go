package track

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Model selects whose view of the connections a table shows.
type Model string

// The models.
const (
	ModelRFC       Model = "rfc"       // both endpoints' RFC 9293 states, like ss -tan
	ModelConntrack Model = "conntrack" // Linux nf_conntrack, like conntrack -L
	ModelIPVS      Model = "ipvs"      // Linux IPVS, like ipvsadm -lc
)

// ParseModel reads a --model value.
func ParseModel(s string) (Model, error) {
	switch m := Model(strings.ToLower(s)); m {
	case ModelRFC, ModelConntrack, ModelIPVS:
		return m, nil
	}
	return "", fmt.Errorf("unknown model %q (want rfc, conntrack or ipvs)", s)
}

// Filter selects connections by state name in any spelling: RFC 9293
// ("SYN-RECEIVED"), ss ("syn-recv", "estab"), conntrack and IPVS
// ("SYN_RECV", "FIN_WAIT", "CLOSE", "NONE") and ss's groups.
type Filter struct {
	name   string
	states []tcp.State
}

// NewFilter parses a --state value.
func NewFilter(name string) (*Filter, error) {
	f := &Filter{name: normal(name)}
	if st, err := tcp.StatesNamed(name); err == nil {
		f.states = st
	} else if f.name != "NONE" && f.name != "CLOSE" && f.name != "SYNSENT2" {
		return nil, err
	}
	return f, nil
}

func normal(s string) string {
	return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToUpper(strings.TrimSpace(s)))
}

// matchName reports whether a model's own state name matches: the same
// spelling, or a state the filter selects.
func (f *Filter) matchName(model string) bool {
	if model == "" {
		return false
	}
	if normal(model) == f.name {
		return true
	}
	st, err := tcp.StatesNamed(model)
	if err != nil {
		return false
	}
	for _, a := range st {
		if f.has(a) {
			return true
		}
	}
	return false
}

func (f *Filter) has(s tcp.State) bool {
	for _, a := range f.states {
		if a == s {
			return true
		}
	}
	return false
}

// Match reports whether v is selected under model m: for rfc, either
// endpoint's state; for conntrack and ipvs, that model's state.
func (f *Filter) Match(v *ConnView, m Model) bool {
	switch m {
	case ModelConntrack:
		return f.matchName(v.ConntrackState)
	case ModelIPVS:
		return f.matchName(v.IPVSState)
	}
	return f.has(v.ClientState) || f.has(v.ServerState)
}

// WriteTable writes views as model m's table. For conntrack and ipvs,
// connections for which the middlebox holds no entry are left out, as the
// tools would.
func WriteTable(w io.Writer, views []ConnView, m Model) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	switch m {
	case ModelConntrack:
		// conntrack -L: "tcp 6 TIMEOUT STATE src= dst= sport= dport=
		// packets= bytes= src= dst= sport= dport= packets= bytes= [FLAGS]"
		// (the counters appear when nf_conntrack_acct is on).
		for i := range views {
			v := &views[i]
			if v.ConntrackState == "" {
				continue
			}
			o, r := v.ConntrackOrigSrc, v.ConntrackOrigDst
			od, rd := C2S, S2C
			if o != v.Client {
				od, rd = S2C, C2S
			}
			line := fmt.Sprintf("tcp      6 %d %s src=%s dst=%s sport=%d dport=%d packets=%d bytes=%d",
				seconds(v.ConntrackExpire), v.ConntrackState, o.Addr(), r.Addr(), o.Port(), r.Port(),
				v.Packets[od], v.Bytes[od])
			if v.ConntrackUnreplied {
				line += " [UNREPLIED]"
			}
			line += fmt.Sprintf(" src=%s dst=%s sport=%d dport=%d packets=%d bytes=%d",
				r.Addr(), o.Addr(), r.Port(), o.Port(), v.Packets[rd], v.Bytes[rd])
			if v.ConntrackAssured {
				line += " [ASSURED]"
			}
			fmt.Fprintln(w, line)
		}
		return nil
	case ModelIPVS:
		// ipvsadm -lc: "pro expire state source virtual destination";
		// here the virtual service and the real server are the same
		// address, the one the client spoke to.
		fmt.Fprintln(tw, "pro\texpire\tstate\tsource\tvirtual\tdestination")
		for i := range views {
			v := &views[i]
			if v.IPVSState == "" {
				continue
			}
			s := seconds(v.IPVSExpire)
			fmt.Fprintf(tw, "TCP\t%02d:%02d\t%s\t%s\t%s\t%s\n", s/60, s%60, v.IPVSState, v.Client, v.Server, v.Server)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "Client\tClient-State\tServer-State\tServer\tPkts c>s/s>c\tBytes c>s/s>c\tRetrans\tConntrack\tZeek")
	for i := range views {
		v := &views[i]
		ct := "-"
		if v.ConntrackState != "" {
			ct = fmt.Sprintf("%s %ds", v.ConntrackState, seconds(v.ConntrackExpire))
		}
		zk := v.ZeekState
		if zk == "" {
			zk = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d/%d\t%d/%d\t%s\t%s %s\n", v.Client, v.ClientState, v.ServerState, v.Server,
			v.Packets[C2S], v.Packets[S2C], v.Bytes[C2S], v.Bytes[S2C], v.Retrans[C2S], v.Retrans[S2C], ct, zk, v.ZeekHistory)
	}
	return tw.Flush()
}

// StateCounts counts views by state under model m (for rfc, each endpoint
// counts: a connection adds two). Middlebox models count only live
// entries.
func StateCounts(views []ConnView, m Model) map[string]int {
	out := map[string]int{}
	for i := range views {
		v := &views[i]
		switch m {
		case ModelConntrack:
			if v.ConntrackState != "" {
				out[v.ConntrackState]++
			}
		case ModelIPVS:
			if v.IPVSState != "" {
				out[v.IPVSState]++
			}
		default:
			out[v.ClientState.String()]++
			out[v.ServerState.String()]++
		}
	}
	return out
}

// Summary is a one-line account of a snapshot: connections, and how many
// of each endpoint state.
func Summary(views []ConnView, at time.Time) string {
	c := StateCounts(views, ModelRFC)
	var parts []string
	for _, s := range tcp.States {
		if n := c[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	return fmt.Sprintf("%d connections at %s; endpoints: %s", len(views), at.UTC().Format(time.RFC3339Nano), strings.Join(parts, ", "))
}
