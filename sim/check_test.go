package sim

import (
	"fmt"
	"sort"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// checker is a Tap that checks, on every segment and every event of a
// run, what must hold whatever the network does:
//
//   - SND.UNA <= SND.NXT, on every event (Status);
//   - every state change is an edge of tcp.Edges, and starts from the
//     state the previous change ended in;
//   - no payload is sent beyond the right edge of the largest window the
//     peer advertised in a segment that reached the sender (scaled as
//     RFC 7323 §2.3 says), except a one-byte zero-window probe right at
//     the edge; and no payload is larger than the peer's MSS;
//   - no ACK acknowledges data the receiver has not received intact: the
//     acknowledgment number never passes the end of the contiguous run of
//     the peer's sequence space that reached this side;
//   - every SACK block covers only bytes that reached this side.
type checker struct {
	w     *World
	sides map[*Conn]*side
	errs  []string
	nerr  int
	// Counts, for the coverage report.
	segs, probes, sacks int
	wsOn, tsOn, sackOn  bool
}

// side is what the checker knows of one connection.
type side struct {
	c    *Conn
	name string
	path []tcp.State

	// What this side sent.
	synSent bool
	synOpts header.TCPOptions

	// What reached this side intact.
	peerSyn     bool
	peerISN     seqnum.Value
	peerSynOpts header.TCPOptions
	got         []span // the peer's sequence space that arrived, as offsets from peerISN
	edgeKnown   bool
	edge        seqnum.Value // the largest right edge of the peer's window seen
}

// span is a half-open range [lo, hi) of sequence-space offsets.
type span struct{ lo, hi uint32 }

func newChecker(w *World) *checker {
	return &checker{w: w, sides: map[*Conn]*side{}}
}

// edgeSet holds tcp.Edges for lookup.
var edgeSet = func() map[[3]uint8]bool {
	m := map[[3]uint8]bool{}
	for _, e := range tcp.Edges {
		m[[3]uint8{uint8(e.From), uint8(e.To), uint8(e.Trigger)}] = true
	}
	return m
}()

func (k *checker) fail(s *side, format string, args ...any) {
	k.nerr++
	if len(k.errs) < 10 {
		k.errs = append(k.errs, fmt.Sprintf("%v %s: ", k.w.Elapsed(), s.name)+fmt.Sprintf(format, args...))
	}
}

func (k *checker) side(h *Host, c *Conn) *side {
	s := k.sides[c]
	if s == nil {
		s = &side{c: c, name: h.Name() + " " + c.ID().String()}
		k.sides[c] = s
	}
	return s
}

// Event implements Tap.
func (k *checker) Event(h *Host, c *Conn, e *tcp.Event) {
	if c == nil {
		return
	}
	s := k.side(h, c)
	st := c.TCP().Status()
	if st.SndNxt.LessThan(st.SndUna) {
		k.fail(s, "SND.UNA %d > SND.NXT %d after %v event", st.SndUna, st.SndNxt, e.Type)
	}
	if e.Type == tcp.EventSegmentOut && e.Reason == tcp.ReasonProbe {
		k.probes++
	}
	if e.Type != tcp.EventState {
		return
	}
	if len(s.path) == 0 {
		s.path = append(s.path, e.From)
	}
	if last := s.path[len(s.path)-1]; last != e.From {
		k.fail(s, "state change %v -> %v, but the connection was in %v", e.From, e.To, last)
	}
	s.path = append(s.path, e.To)
	if tr := tcp.TriggerOf(e); !edgeSet[[3]uint8{uint8(e.From), uint8(e.To), uint8(tr)}] {
		k.fail(s, "%v -> %v on %v (%v) is not an edge of the state diagram", e.From, e.To, tr, e.Cause)
	}
}

// shift is the scale of the windows the peer sends this side: its
// window-scale option's shift when both SYNs carried the option (RFC 7323
// §2.2), else 0.
func (s *side) shift() uint {
	if s.synOpts.HasWindowScale && s.peerSynOpts.HasWindowScale {
		return uint(min(s.peerSynOpts.WindowScale, 14))
	}
	return 0
}

// peerMSS is the largest payload the peer accepts: its MSS option, or
// RFC 9293 §3.7.1's default.
func (s *side) peerMSS() int {
	if s.peerSynOpts.HasMSS {
		return int(s.peerSynOpts.MSS)
	}
	if a := s.c.ID().Remote.Addr(); a.Is6() && !a.Is4In6() {
		return 1220
	}
	return tcp.DefaultSendMSS
}

// contiguous is the offset up to which everything of the peer's sequence
// space has arrived.
func (s *side) contiguous() uint32 {
	if len(s.got) == 0 || s.got[0].lo != 0 {
		return 0
	}
	return s.got[0].hi
}

// holds reports whether every offset in [lo, hi) has arrived.
func (s *side) holds(lo, hi uint32) bool {
	for _, g := range s.got {
		if g.lo <= lo && hi <= g.hi {
			return true
		}
	}
	return lo == hi
}

// add records that [lo, hi) arrived, merging ranges.
func (s *side) add(lo, hi uint32) {
	if lo >= hi {
		return
	}
	i := sort.Search(len(s.got), func(i int) bool { return s.got[i].hi >= lo })
	j := i
	for j < len(s.got) && s.got[j].lo <= hi {
		lo = min(lo, s.got[j].lo)
		hi = max(hi, s.got[j].hi)
		j++
	}
	s.got = append(s.got[:i], append([]span{{lo, hi}}, s.got[j:]...)...)
}

// Sent implements Tap.
func (k *checker) Sent(h *Host, c *Conn, seg *tcp.Segment) {
	if c == nil {
		return
	}
	k.segs++
	s := k.side(h, c)
	if seg.Flags&header.SYN != 0 {
		s.synSent, s.synOpts = true, seg.Options
	}
	if n := len(seg.Payload); n > 0 {
		if n > s.peerMSS() {
			k.fail(s, "sends %d bytes at seq %d, more than the peer's MSS %d", n, seg.Seq, s.peerMSS())
		}
		end := seg.Seq.Add(seqnum.Size(n))
		switch {
		case !s.edgeKnown:
			k.fail(s, "sends %d bytes at seq %d before any window arrived", n, seg.Seq)
		case s.edge.LessThan(end):
			if n == 1 && seg.Seq == s.edge {
				break // a zero-window probe: one byte past the edge
			}
			k.fail(s, "sends seq %d..%d beyond the peer's window, whose right edge is %d", seg.Seq, end, s.edge)
		}
	}
	if seg.Flags&header.ACK != 0 && s.peerSyn {
		off := uint32(seg.Ack - s.peerISN)
		if have := s.contiguous(); off > have {
			k.fail(s, "acknowledges %d, but only %d (peer ISN %d + %d) arrived in order", seg.Ack, s.peerISN.Add(seqnum.Size(have)), s.peerISN, have)
		}
	} else if seg.Flags&header.ACK != 0 && seg.Flags&header.RST == 0 {
		k.fail(s, "sends ACK %d before any SYN arrived", seg.Ack)
	}
	for _, b := range seg.Options.SACKBlocks[:min(max(seg.Options.NumSACK, 0), header.MaxSACKBlocks)] {
		k.sacks++
		lo, hi := uint32(b.Left-s.peerISN), uint32(b.Right-s.peerISN)
		if !s.peerSyn || hi < lo || !s.holds(lo, hi) {
			k.fail(s, "SACKs %d-%d, which did not all arrive", b.Left, b.Right)
		}
	}
}

// Received implements Tap.
func (k *checker) Received(h *Host, c *Conn, seg *tcp.Segment) {
	if c == nil {
		return
	}
	s := k.side(h, c)
	syn := seg.Flags&header.SYN != 0
	if syn {
		if !s.peerSyn {
			s.peerSyn, s.peerISN, s.peerSynOpts = true, seg.Seq, seg.Options
		}
		if s.synSent && s.synOpts.HasWindowScale && seg.Options.HasWindowScale {
			k.wsOn = true
		}
		if s.synSent && s.synOpts.HasTimestamps && seg.Options.HasTimestamps {
			k.tsOn = true
		}
		if s.synSent && s.synOpts.SACKPermitted && seg.Options.SACKPermitted {
			k.sackOn = true
		}
	}
	if s.peerSyn {
		if off := uint32(seg.Seq - s.peerISN); off < 1<<31 {
			s.add(off, off+uint32(seg.Len()))
		}
	}
	if seg.Flags&header.ACK != 0 && seg.Flags&header.RST == 0 {
		wnd := seqnum.Size(seg.Window)
		if !syn {
			wnd <<= s.shift()
		}
		edge := seg.Ack.Add(wnd)
		if !s.edgeKnown || s.edge.LessThan(edge) {
			s.edge, s.edgeKnown = edge, true
		}
	}
}

// stateNames spells a path as "CLOSED SYN-SENT ...".
func stateNames(p []tcp.State) string {
	var b []byte
	for i, s := range p {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s.String()...)
	}
	return string(b)
}
