package track

import (
	"encoding/json"
	"io"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
	"github.com/tcpstate/tcpstate/track/zeek"
)

// C2S and S2C index the per-direction arrays of a ConnView.
const (
	C2S = 0 // client to server
	S2C = 1 // server to client
)

// ConnView is one connection at an instant.
type ConnView struct {
	Client, Server netip.AddrPort
	// ClientState and ServerState are the believed RFC 9293 states: every
	// packet seen taken as delivered (see the package comment).
	ClientState, ServerState tcp.State
	// ClientProven and ServerProven apply only the deliveries the
	// endpoints' own packets proved.
	ClientProven, ServerProven tcp.State
	// ConntrackState is the state `conntrack -L` would print, "" when the
	// entry would not exist (never created, expired, deleted, or now
	// owned by a later connection on the tuple); ConntrackExpire is the
	// time left on its timer. ConntrackOrig and ConntrackReply are the
	// entry's original direction's source and destination.
	ConntrackState                     string
	ConntrackExpire                    time.Duration
	ConntrackAssured                   bool
	ConntrackUnreplied                 bool
	ConntrackOrigSrc, ConntrackOrigDst netip.AddrPort
	// IPVSState and IPVSExpire are what `ipvsadm -lc` would show.
	IPVSState  string
	IPVSExpire time.Duration
	// ZeekState and ZeekHistory are Zeek's conn_state and history.
	ZeekState, ZeekHistory string
	// Per direction (C2S, S2C): packets, TCP payload bytes,
	// retransmissions, zero-window advertisements, the latest window
	// (scaled when window scaling was negotiated) and RSTs.
	Packets, Bytes, Retrans, ZeroWindow, RSTs [2]uint64
	Window                                    [2]uint64
	// First and Last are the first and last packet's timestamps.
	First, Last time.Time
	// Ended is set when both endpoints are CLOSED at the instant.
	Ended bool
	// MidStream is set when the connection's start was not captured.
	MidStream bool
	// HalfOpen[d] is set when the sender of direction d answered the
	// peer's data with a bare RST (it had no connection: the peer lost,
	// or never had, its state).
	HalfOpen [2]bool
	// CloseWaitSince is when the FIN that put an endpoint in CLOSE-WAIT
	// was seen (zero when neither is).
	CloseWaitSince time.Time
	// TimeWaitSince is when the endpoint in TIME-WAIT entered it.
	TimeWaitSince time.Time
}

// Snapshot returns every connection seen so far as it stands at instant
// at, in order of first packet. Feed only packets up to at: the states are
// those after the packets fed, with the timers (TIME-WAIT, conntrack,
// IPVS) run to at. Packets held for reordering (see order) longer than
// holdMax before at are taken in first.
func (t *Tracker) Snapshot(at time.Time) []ConnView {
	out := make([]ConnView, 0, len(t.conns))
	now := at.UnixNano()
	for _, r := range t.conns {
		c := t.slab.at(r)
		if c.heldN() > 0 {
			t.release(c, now, false)
		}
		out = append(out, t.view(c, now))
	}
	return out
}

func (t *Tracker) view(c *Conn, now int64) ConnView {
	at := fromNanos(now)
	v := ConnView{Client: c.Client(), Server: c.Server(), First: c.First(), Last: c.Last(), MidStream: c.MidStream}
	var tw [2]int64
	v.ClientState, tw[0] = c.believed(0, now, t.cfg.TimeWait)
	v.ServerState, tw[1] = c.believed(1, now, t.cfg.TimeWait)
	v.ClientProven = c.proven(0, now, t.cfg.TimeWait)
	v.ServerProven = c.proven(1, now, t.cfg.TimeWait)
	v.Ended = v.ClientState == tcp.Closed && v.ServerState == tcp.Closed
	for d, s := range [2]tcp.State{v.ClientState, v.ServerState} {
		switch s {
		case tcp.CloseWait:
			v.CloseWaitSince = fromNanosOrZero(c.time(c.dir[1-d].finT, farFin+1-d))
		case tcp.TimeWait:
			v.TimeWaitSince = fromNanosOrZero(tw[d])
		}
	}
	wsOK := c.dir[0].ws >= 0 && c.dir[1].ws >= 0
	for d := range c.dir {
		ds := &c.dir[d]
		n := c.counters(d)
		v.Packets[d], v.Bytes[d], v.Retrans[d] = n.packets, n.bytes, n.retrans
		v.ZeroWindow[d], v.RSTs[d], v.HalfOpen[d] = n.zeroWin, n.rsts, ds.is(dsHalfOpen)
		v.Window[d] = uint64(ds.win)
		if wsOK {
			v.Window[d] <<= uint(ds.ws)
		}
	}
	if !c.flag(cfSuperseded) {
		if e := &c.ct; c.flag(cfHasCT) {
			if st, left, ok := e.At(at); ok {
				v.ConntrackState, v.ConntrackExpire = st, left
				v.ConntrackAssured, v.ConntrackUnreplied = e.Assured(), e.Unreplied()
				src, dst := c.Server(), c.Client()
				if c.fromClient(ctFirst) {
					src, dst = c.Client(), c.Server()
				}
				if e.Reversed() {
					src, dst = dst, src
				}
				v.ConntrackOrigSrc, v.ConntrackOrigDst = src, dst
			}
		}
		if e := &c.vs; c.flag(cfHasVS) {
			if st, left, ok := e.At(at); ok {
				v.IPVSState, v.IPVSExpire = st, left
			}
		}
	}
	var zx *zeek.Rare
	if c.x != nil {
		zx = c.x.zk
	}
	v.ZeekState, v.ZeekHistory = c.zk.StateWith(zx), c.zk.HistoryWith(zx)
	return v
}

// fromNanosOrZero is fromNanos, with 0 the zero time.
func fromNanosOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// JSONView is the JSON object written per connection (WriteJSON); the
// first eighteen fields are the ones the issue fixes and outside tests
// rely on.
type JSONView struct {
	Client          string `json:"client"`
	Server          string `json:"server"`
	ClientState     string `json:"client_state"`
	ServerState     string `json:"server_state"`
	ConntrackState  string `json:"conntrack_state"`
	ConntrackExpire int64  `json:"conntrack_expire"`
	IPVSState       string `json:"ipvs_state"`
	IPVSExpire      int64  `json:"ipvs_expire"`
	PacketsC2S      uint64 `json:"packets_c2s"`
	PacketsS2C      uint64 `json:"packets_s2c"`
	BytesC2S        uint64 `json:"bytes_c2s"`
	BytesS2C        uint64 `json:"bytes_s2c"`
	RetransC2S      uint64 `json:"retrans_c2s"`
	RetransS2C      uint64 `json:"retrans_s2c"`
	ZeekState       string `json:"zeek_state"`
	ZeekHistory     string `json:"zeek_history"`

	ClientProven   string  `json:"client_state_proven"`
	ServerProven   string  `json:"server_state_proven"`
	ConntrackFlags string  `json:"conntrack_flags,omitempty"`
	FirstSeen      float64 `json:"first_seen"`
	LastSeen       float64 `json:"last_seen"`
	Ended          bool    `json:"ended"`
	MidStream      bool    `json:"mid_stream,omitempty"`
	WindowC2S      uint64  `json:"window_c2s"`
	WindowS2C      uint64  `json:"window_s2c"`
	ZeroWindowC2S  uint64  `json:"zero_window_c2s"`
	ZeroWindowS2C  uint64  `json:"zero_window_s2c"`
	RSTsC2S        uint64  `json:"rst_c2s"`
	RSTsS2C        uint64  `json:"rst_s2c"`
}

// seconds truncates a timer's time left to whole seconds, as conntrack
// and ipvsadm print it (both divide the jiffies left by HZ).
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(d / time.Second)
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// JSON converts v to its JSON form.
func (v *ConnView) JSON() JSONView {
	j := JSONView{
		Client: v.Client.String(), Server: v.Server.String(),
		ClientState: v.ClientState.String(), ServerState: v.ServerState.String(),
		ConntrackState: v.ConntrackState, ConntrackExpire: seconds(v.ConntrackExpire),
		IPVSState: v.IPVSState, IPVSExpire: seconds(v.IPVSExpire),
		PacketsC2S: v.Packets[C2S], PacketsS2C: v.Packets[S2C],
		BytesC2S: v.Bytes[C2S], BytesS2C: v.Bytes[S2C],
		RetransC2S: v.Retrans[C2S], RetransS2C: v.Retrans[S2C],
		ZeekState: v.ZeekState, ZeekHistory: v.ZeekHistory,
		ClientProven: v.ClientProven.String(), ServerProven: v.ServerProven.String(),
		FirstSeen: unixSeconds(v.First), LastSeen: unixSeconds(v.Last),
		Ended: v.Ended, MidStream: v.MidStream,
		WindowC2S: v.Window[C2S], WindowS2C: v.Window[S2C],
		ZeroWindowC2S: v.ZeroWindow[C2S], ZeroWindowS2C: v.ZeroWindow[S2C],
		RSTsC2S: v.RSTs[C2S], RSTsS2C: v.RSTs[S2C],
	}
	if v.ConntrackState != "" {
		switch {
		case v.ConntrackUnreplied:
			j.ConntrackFlags = "UNREPLIED"
		case v.ConntrackAssured:
			j.ConntrackFlags = "ASSURED"
		}
	}
	return j
}

// WriteJSON writes one JSON object per line per view.
func WriteJSON(w io.Writer, views []ConnView) error {
	var b []byte
	for i := range views {
		b = views[i].AppendJSON(b)
		if len(b) >= 64<<10 || i == len(views)-1 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	return nil
}

// AppendJSON appends v's JSON object (JSONView) and a newline to b: the
// same bytes as encoding/json's Encoder writes for v.JSON(), without
// reflection.
func (v *ConnView) AppendJSON(b []byte) []byte {
	b = append(b, `{"client":`...)
	b = appendJSONAddr(b, v.Client)
	b = append(b, `,"server":`...)
	b = appendJSONAddr(b, v.Server)
	b = append(b, `,"client_state":`...)
	b = appendJSONString(b, v.ClientState.String())
	b = append(b, `,"server_state":`...)
	b = appendJSONString(b, v.ServerState.String())
	b = append(b, `,"conntrack_state":`...)
	b = appendJSONString(b, v.ConntrackState)
	b = append(b, `,"conntrack_expire":`...)
	b = strconv.AppendInt(b, seconds(v.ConntrackExpire), 10)
	b = append(b, `,"ipvs_state":`...)
	b = appendJSONString(b, v.IPVSState)
	b = append(b, `,"ipvs_expire":`...)
	b = strconv.AppendInt(b, seconds(v.IPVSExpire), 10)
	for _, f := range [...]struct {
		name string
		n    uint64
	}{{`,"packets_c2s":`, v.Packets[C2S]}, {`,"packets_s2c":`, v.Packets[S2C]},
		{`,"bytes_c2s":`, v.Bytes[C2S]}, {`,"bytes_s2c":`, v.Bytes[S2C]},
		{`,"retrans_c2s":`, v.Retrans[C2S]}, {`,"retrans_s2c":`, v.Retrans[S2C]}} {
		b = append(b, f.name...)
		b = strconv.AppendUint(b, f.n, 10)
	}
	b = append(b, `,"zeek_state":`...)
	b = appendJSONString(b, v.ZeekState)
	b = append(b, `,"zeek_history":`...)
	b = appendJSONString(b, v.ZeekHistory)
	b = append(b, `,"client_state_proven":`...)
	b = appendJSONString(b, v.ClientProven.String())
	b = append(b, `,"server_state_proven":`...)
	b = appendJSONString(b, v.ServerProven.String())
	if v.ConntrackState != "" {
		switch {
		case v.ConntrackUnreplied:
			b = append(b, `,"conntrack_flags":"UNREPLIED"`...)
		case v.ConntrackAssured:
			b = append(b, `,"conntrack_flags":"ASSURED"`...)
		}
	}
	b = append(b, `,"first_seen":`...)
	b = appendJSONFloat(b, unixSeconds(v.First))
	b = append(b, `,"last_seen":`...)
	b = appendJSONFloat(b, unixSeconds(v.Last))
	b = append(b, `,"ended":`...)
	b = strconv.AppendBool(b, v.Ended)
	if v.MidStream {
		b = append(b, `,"mid_stream":true`...)
	}
	for _, f := range [...]struct {
		name string
		n    uint64
	}{{`,"window_c2s":`, v.Window[C2S]}, {`,"window_s2c":`, v.Window[S2C]},
		{`,"zero_window_c2s":`, v.ZeroWindow[C2S]}, {`,"zero_window_s2c":`, v.ZeroWindow[S2C]},
		{`,"rst_c2s":`, v.RSTs[C2S]}, {`,"rst_s2c":`, v.RSTs[S2C]}} {
		b = append(b, f.name...)
		b = strconv.AppendUint(b, f.n, 10)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML characters included); anything but printable ASCII is
// left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONAddr appends a's text form as a JSON string, as
// appendJSONString(b, a.String()) does, without making the string unless
// it needs escaping (a zone with unusual characters).
func appendJSONAddr(b []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return appendJSONString(b, a.String()) // AppendTo writes nothing for it
	}
	b = append(b, '"')
	start := len(b)
	b = a.AppendTo(b)
	for _, c := range b[start:] {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendJSONString(b[:start-1], a.String())
		}
	}
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json formats a float64 ('f'
// between 1e-6 and 1e21, the shortest representation); other magnitudes
// are left to encoding/json.
func appendJSONFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) || math.IsNaN(f) || math.IsInf(f, 0) {
		q, _ := json.Marshal(f)
		return append(b, q...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
