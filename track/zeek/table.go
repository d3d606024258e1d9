package zeek

// EndpointState is the state Zeek's TCP analyzer keeps for each endpoint
// (src/analyzer/protocol/tcp/TCP_Endpoint.h, EndpointState; the script layer
// sees them as TCP_INACTIVE ... TCP_RESET). conn_state is computed from the
// pair.
type EndpointState uint8

// The endpoint states.
const (
	Inactive    EndpointState = iota // TCP_INACTIVE: nothing seen from it
	SynSent                          // TCP_SYN_SENT: it sent a SYN
	SynAckSent                       // TCP_SYN_ACK_SENT: the originator sent a SYN,ACK first
	Partial                          // TCP_PARTIAL: traffic without a handshake
	Established                      // TCP_ESTABLISHED
	Closed                           // TCP_CLOSED: it sent a FIN
	Reset                            // TCP_RESET: it sent a RST
)

var endpointNames = [...]string{"TCP_INACTIVE", "TCP_SYN_SENT", "TCP_SYN_ACK_SENT",
	"TCP_PARTIAL", "TCP_ESTABLISHED", "TCP_CLOSED", "TCP_RESET"}

// String is the script-level name of the state.
func (s EndpointState) String() string {
	if int(s) < len(endpointNames) {
		return endpointNames[s]
	}
	return "?"
}

// connStateRules is Zeek's conn_state function
// (scripts/base/protocols/conn/main.zeek) written as an ordered list: the
// first rule whose test holds gives the conn_state. os/rs are the
// originator's and responder's endpoint states; "inactive" means
// TCP_INACTIVE or TCP_PARTIAL. The meaning of each code, from the same
// file's documentation of Conn::Info$conn_state:
//
//	S0     connection attempt seen, no reply
//	S1     connection established, not terminated
//	SF     normal establishment and termination
//	REJ    connection attempt rejected
//	S2     established, close attempt by the originator seen (no reply from the responder)
//	S3     established, close attempt by the responder seen (no reply from the originator)
//	RSTO   established, the originator aborted (sent a RST)
//	RSTR   the responder sent a RST
//	RSTOS0 the originator sent a SYN then a RST; no SYN,ACK seen
//	RSTRH  the responder sent a SYN,ACK then a RST; no SYN seen from the originator
//	SH     the originator sent a SYN then a FIN; no SYN,ACK seen ("half" open)
//	SHR    the responder sent a SYN,ACK then a FIN; no SYN seen from the originator
//	OTH    no SYN seen, just midstream traffic
var connStateRules = []struct {
	state string
	test  func(c *connView) bool
}{
	{"REJ", func(c *connView) bool {
		return c.rs == Reset && (c.os == SynSent || c.os == SynAckSent ||
			(c.os == Reset && c.origSize == 0 && c.respSize == 0))
	}},
	{"RSTRH", func(c *connView) bool { return c.rs == Reset && c.oInactive() }},
	{"RSTR", func(c *connView) bool { return c.rs == Reset }},
	{"RSTOS0", func(c *connView) bool { return c.os == Reset && c.rInactive() && c.synThenRst }},
	{"OTH", func(c *connView) bool { return c.os == Reset && c.rInactive() }},
	{"RSTO", func(c *connView) bool { return c.os == Reset }},
	{"SF", func(c *connView) bool { return c.os == Closed && c.rs == Closed }},
	{"SH", func(c *connView) bool { return c.os == Closed && c.rInactive() }},
	{"S2", func(c *connView) bool { return c.os == Closed }},
	{"SHR", func(c *connView) bool { return c.rs == Closed && c.oInactive() }},
	{"S3", func(c *connView) bool { return c.rs == Closed }},
	{"S0", func(c *connView) bool { return c.os == SynSent && c.rs == Inactive }},
	{"S1", func(c *connView) bool { return c.os == Established && c.rs == Established }},
	{"OTH", func(*connView) bool { return true }},
}

// connView is what conn_state looks at.
type connView struct {
	os, rs             EndpointState
	origSize, respSize uint64
	// synThenRst is the script's test of the history against the pattern
	// ^?S[^HAFGIQ]*R.* : an originator SYN, then an originator RST, with no
	// originator SYN,ACK, ACK, FIN, gap, inconsistency or multi-flag packet
	// in between.
	synThenRst bool
}

// StateMeaning explains a conn_state code in a few words (after the
// documentation of Conn::Info$conn_state in main.zeek); "" for an unknown
// code.
func StateMeaning(code string) string { return stateMeanings[code] }

var stateMeanings = map[string]string{
	"S0":     "connection attempt seen, no reply",
	"S1":     "established, not terminated",
	"SF":     "normal establishment and termination",
	"REJ":    "connection attempt rejected",
	"S2":     "established, originator's close seen, no reply from the responder",
	"S3":     "established, responder's close seen, no reply from the originator",
	"RSTO":   "established, the originator aborted (RST)",
	"RSTR":   "the responder sent a RST",
	"RSTOS0": "originator sent SYN then RST; no SYN,ACK seen",
	"RSTRH":  "responder sent SYN,ACK then RST; no SYN seen",
	"SH":     "originator sent SYN then FIN; no SYN,ACK seen (half open)",
	"SHR":    "responder sent SYN,ACK then FIN; no SYN seen",
	"OTH":    "no SYN seen, midstream traffic",
}

// HistoryMeaning explains one history letter (after the documentation of
// Conn::Info$history in main.zeek): upper case is the originator, lower
// case the responder. "" for a letter Zeek does not use.
func HistoryMeaning(letter byte) string {
	who := "originator"
	if letter >= 'a' && letter <= 'z' {
		who = "responder"
		letter -= 'a' - 'A'
	}
	if letter == '^' {
		return "Zeek flipped the roles of originator and responder"
	}
	m, ok := historyMeanings[letter]
	if !ok {
		return ""
	}
	return who + ": " + m
}

var historyMeanings = map[byte]string{
	'S': "SYN without ACK",
	'H': "SYN,ACK",
	'A': "pure ACK (noted once)",
	'D': "packet with payload (noted once)",
	'F': "FIN (again when at a new sequence number)",
	'R': "RST (again when at a new sequence number)",
	'C': "bad checksum (again at 10, 100, ... of them)",
	'G': "content gap (again at 10, 100, ...)",
	'T': "retransmitted payload (again at 10, 100, ...)",
	'W': "zero window advertised (again at 10, 100, ...)",
	'I': "inconsistent packet, e.g. FIN+RST (noted once)",
	'Q': "multi-flag packet, SYN+FIN or SYN+RST (noted once)",
	'X': "analysis partial, e.g. limits exceeded",
}

func (c *connView) oInactive() bool { return c.os == Inactive || c.os == Partial }
func (c *connView) rInactive() bool { return c.rs == Inactive || c.rs == Partial }

// synThenRst matches a history against ^?S[^HAFGIQ]*R.* (anchored at the
// start, as Zeek's pattern equality is).
func synThenRst[T string | []byte](h T) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for i := 1; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
