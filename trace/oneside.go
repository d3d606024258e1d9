package trace

import (
	"net/netip"

	"github.com/tcpstate/tcpstate/tcp"
)

// This file handles traces that a running stack writes (tcpstate serve
// --trace): the records of one host only, for many connections, told apart
// by Record.Conn. Conns and ForConn pick one connection out; WithPeer adds
// the other end so the ladder renderers can draw it.

// Conns returns the distinct connections recs mention, in the order they
// first appear, each as the first record that names it spells it. Records
// with no remote end (the zero tuple, a listener's "local->*") name no
// connection and are skipped. A connection seen from both ends (a two-host
// trace) appears twice, once per direction; see ForConn.
func Conns(recs []Record) []tcp.Tuple {
	var out []tcp.Tuple
	seen := map[tcp.Tuple]bool{}
	for i := range recs {
		c := recs[i].Conn
		if !c.Remote.IsValid() || !c.Local.IsValid() || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// Reverse returns the tuple as the other end sees it.
func Reverse(t tcp.Tuple) tcp.Tuple { return tcp.Tuple{Local: t.Remote, Remote: t.Local} }

// ForConn returns, in order, the records of connection id: those whose
// Conn is id or id reversed (so a two-host trace yields both ends, and
// link records of packets either way), together with what a ladder of the
// connection needs around them: the KindHost records that name the hosts,
// the KindListen record of a listener on either end's address and port, and
// notes.
func ForConn(recs []Record, id tcp.Tuple) []Record {
	rev := Reverse(id)
	var out []Record
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Conn == id || r.Conn == rev:
		case r.Kind == KindHost, r.Kind == KindNote:
		case r.Kind == KindListen && (r.Conn.Local == id.Local || r.Conn.Local == id.Remote):
		default:
			continue
		}
		out = append(out, *r)
	}
	return out
}

// WithPeer turns the records of one connection as one host saw it (a
// stack's trace, narrowed by ForConn) into a two-host trace that Ladder
// and LadderSVG draw: the host on the left, the peer on the right.
//
// The host is the first record's Host that is not empty. The peer is added
// as a second host named by the connection's remote address and port
// ("10.0.0.1:49152"); nothing is known of its state, so the ladders leave
// its state and time columns blank. Each segment-out of the host is
// followed by the peer's arrival of the same segment, and each segment-in
// is preceded by the peer's send of it, both in the same step, with a
// fresh Pkt number joining them (the host's own Pkt numbers, if any, are
// replaced). A KindHost record for the host is kept, with its address;
// when there is none, one is added with the connection's local address.
// When every record's Step is 0, steps are assigned: a new step begins at
// each segment-in, call and timer expiry, and every other record joins
// the step before it.
//
// Records of other hosts, and of other connections, are left out; recs is
// not modified.
func WithPeer(recs []Record) []Record {
	host := ""
	var conn tcp.Tuple
	for i := range recs {
		if host == "" && recs[i].Host != "" && recs[i].Kind != KindNote {
			host = recs[i].Host
		}
		if !conn.Remote.IsValid() && recs[i].Conn.Remote.IsValid() && recs[i].Host == host {
			conn = recs[i].Conn
		}
	}
	if host == "" {
		return nil
	}
	peer := "peer"
	if conn.Remote.IsValid() {
		peer = conn.Remote.String()
	}

	numbered := true
	for i := range recs {
		if recs[i].Step != 0 {
			numbered = false
			break
		}
	}

	out := make([]Record, 0, len(recs)*2+1)
	// The host's KindHost record goes first, so that the host is the
	// ladder's left column.
	hasHost := false
	for i := range recs {
		if recs[i].Kind == KindHost && recs[i].Host == host {
			hasHost = true
			h := recs[i]
			h.Step = 0
			out = append(out, h)
			break
		}
	}
	if !hasHost {
		var addr netip.Addr
		if conn.Local.IsValid() {
			addr = conn.Local.Addr()
		}
		out = append(out, Record{Host: host, Addr: addr, Kind: KindHost})
	}

	var step, pkt uint64
	for i := range recs {
		r := recs[i]
		if r.Kind != KindNote && r.Host != host || r.Kind == KindHost {
			continue
		}
		if r.Kind != KindHost && r.Kind != KindNote && r.Kind != KindListen && conn.Remote.IsValid() && r.Conn != conn {
			continue
		}
		if numbered {
			switch r.Kind {
			case KindSegmentIn, KindCall, KindTimerFired:
				step++
			}
			if r.Kind != KindHost {
				r.Step = step
			}
		}
		switch r.Kind {
		case KindSegmentOut:
			pkt++
			r.Pkt = pkt
			out = append(out, r)
			if r.HasSeg {
				out = append(out, peerRecord(&r, peer, KindSegmentIn, pkt))
			}
			continue
		case KindSegmentIn:
			pkt++
			r.Pkt = pkt
			if r.HasSeg {
				out = append(out, peerRecord(&r, peer, KindSegmentOut, pkt))
			}
		}
		out = append(out, r)
	}
	return out
}

// peerRecord is the peer's side of segment r: the peer sends it (kind
// KindSegmentOut) or receives it (KindSegmentIn), at r's time and step,
// with no state.
func peerRecord(r *Record, peer string, kind Kind, pkt uint64) Record {
	return Record{
		T: r.T, Step: r.Step, Run: r.Run, Host: peer, Conn: Reverse(r.Conn), Kind: kind,
		Pkt: pkt, HasSeg: true, Seg: r.Seg, Opts: r.Opts,
	}
}
