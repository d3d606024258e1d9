package capture

import "sync/atomic"

// reasons lists every MalformedError, in the order of their idx.
var reasons = [...]*MalformedError{
	errLinkShort, errLinkType, errIPShort, errIPVersion, errIPv4HdrLen, errIPLen,
	errIPv6ExtShort, errTCPShort, errTCPDataOffset, errRecord, errInterface,
}

func (e *MalformedError) index() int { return e.idx }

// Stats counts what a Reader has read so far. Every frame is counted once
// in Frames and once in exactly one of TCP, NonTCP, Fragments or
// Malformed, so nothing is lost without a trace.
type Stats struct {
	// Frames is the number of packet records read.
	Frames int64
	// TCP is the number of TCP segments decoded (and returned by Next).
	TCP int64
	// NonTCP is the number of well-formed frames that carry no TCP:
	// ARP, UDP, ICMP, 802.3/LLC, ESP and so on.
	NonTCP int64
	// Fragments is the number of IP fragments other than the first,
	// which hold no TCP header.
	Fragments int64
	// Malformed counts the frames that could not be decoded, by reason
	// (the Reason of their MalformedError). Reasons with no frames are
	// absent.
	Malformed map[string]int64
}

// counters are a Reader's Stats as it keeps them: atomics, so that Stats
// may be called while another goroutine calls Next.
type counters struct {
	frames, tcp, nonTCP, fragments atomic.Int64
	malformed                      [len(reasons)]atomic.Int64
}

// Stats returns the counts so far. It may be called from any goroutine.
func (r *Reader) Stats() Stats {
	s := Stats{
		Frames:    r.st.frames.Load(),
		TCP:       r.st.tcp.Load(),
		NonTCP:    r.st.nonTCP.Load(),
		Fragments: r.st.fragments.Load(),
		Malformed: map[string]int64{},
	}
	for i := range r.st.malformed {
		if n := r.st.malformed[i].Load(); n > 0 {
			s.Malformed[reasons[i].Reason] += n
		}
	}
	return s
}
