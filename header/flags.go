package header

// TCPFlags holds the control bits of a TCP header (RFC 9293 §3.1, RFC 3168
// for ECE and CWR).
type TCPFlags uint8

// The control bits, in the order the header carries them.
const (
	FIN TCPFlags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// Has reports whether every bit of g is set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// String spells the flags as people write them, SYN first: "SYN,ACK",
// "FIN,ACK", "RST". No flags at all is "none".
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	// SYN, then FIN, RST, PSH, ACK, URG, ECE, CWR: the order tcpdump and the
	// RFC's prose use ("SYN,ACK", "FIN,ACK").
	order := [...]TCPFlags{SYN, FIN, RST, PSH, ACK, URG, ECE, CWR}
	var buf [40]byte
	b := buf[:0]
	for _, g := range order {
		if f&g == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		for i := range flagNames {
			if TCPFlags(1)<<i == g {
				b = append(b, flagNames[i]...)
			}
		}
	}
	return string(b)
}
