package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tcpstate/tcpstate/header"
	"github.com/tcpstate/tcpstate/seqnum"
	"github.com/tcpstate/tcpstate/tcp"
)

// AppendJSON appends r as one JSON object, without a newline, and returns
// the extended buffer. Fields that do not apply to r's Kind are left out.
// Times are seconds since the start of the run ("t":0.01); flags are
// spelled as header.TCPFlags does ("SYN,ACK"); states as RFC 9293 does.
// The same record always encodes to the same bytes.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"t":`...)
	b = appendSeconds(b, r.T)
	b = append(b, `,"step":`...)
	b = strconv.AppendUint(b, r.Step, 10)
	if r.Run != "" {
		b = appendField(b, "run", r.Run)
	}
	if r.Host != "" {
		b = appendField(b, "host", r.Host)
	}
	if r.Addr.IsValid() {
		b = appendField(b, "addr", r.Addr.String())
	}
	if r.Conn.Local.IsValid() || r.Conn.Remote.IsValid() {
		b = appendField(b, "conn", tupleString(r.Conn))
	}
	b = appendField(b, "type", string(r.Kind))
	if r.HasState {
		b = appendField(b, "state", r.State.String())
	}
	if r.Kind == KindState {
		b = appendField(b, "from", r.From.String())
		b = appendField(b, "to", r.To.String())
		b = appendField(b, "cause", r.Cause)
	}
	if r.Call != "" {
		b = appendField(b, "call", r.Call)
	}
	if r.Pkt != 0 {
		b = append(b, `,"pkt":`...)
		b = strconv.AppendUint(b, r.Pkt, 10)
	}
	if r.HasSeg {
		b = appendField(b, "flags", r.Seg.Flags.String())
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, uint64(r.Seg.Seq), 10)
		b = append(b, `,"ack":`...)
		b = strconv.AppendUint(b, uint64(r.Seg.Ack), 10)
		b = append(b, `,"win":`...)
		b = strconv.AppendUint(b, uint64(r.Seg.Window), 10)
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, int64(r.Seg.Len), 10)
	}
	if r.Opts != "" {
		b = appendField(b, "opts", r.Opts)
	}
	if r.Reason != "" {
		b = appendField(b, "reason", r.Reason)
	}
	if r.Retransmit {
		b = append(b, `,"retransmit":true`...)
	}
	if r.Timer != "" {
		b = appendField(b, "timer", r.Timer)
	}
	if r.Kind == KindTimerSet {
		b = append(b, `,"deadline":`...)
		b = appendSeconds(b, r.Deadline)
	}
	if r.Link != "" {
		b = appendField(b, "link", r.Link)
	}
	if r.Text != "" {
		b = appendField(b, "text", r.Text)
	}
	return append(b, '}')
}

// MarshalJSON encodes r as AppendJSON does.
func (r Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// recordJSON is the decoding form of a Record: pointers tell present
// fields from absent ones.
type recordJSON struct {
	T          float64    `json:"t"`
	Step       uint64     `json:"step"`
	Run        string     `json:"run"`
	Host       string     `json:"host"`
	Addr       string     `json:"addr"`
	Conn       string     `json:"conn"`
	Type       Kind       `json:"type"`
	State      *tcp.State `json:"state"`
	From       tcp.State  `json:"from"`
	To         tcp.State  `json:"to"`
	Cause      string     `json:"cause"`
	Call       string     `json:"call"`
	Pkt        uint64     `json:"pkt"`
	Flags      *string    `json:"flags"`
	Seq        uint32     `json:"seq"`
	Ack        uint32     `json:"ack"`
	Win        uint16     `json:"win"`
	Len        int        `json:"len"`
	Opts       string     `json:"opts"`
	Reason     string     `json:"reason"`
	Retransmit bool       `json:"retransmit"`
	Timer      string     `json:"timer"`
	Deadline   float64    `json:"deadline"`
	Link       string     `json:"link"`
	Text       string     `json:"text"`
}

// UnmarshalJSON decodes what AppendJSON encodes.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Record{
		T: seconds(j.T), Step: j.Step, Run: j.Run, Host: j.Host, Kind: j.Type,
		From: j.From, To: j.To, Cause: j.Cause, Call: j.Call, Pkt: j.Pkt,
		Opts: j.Opts, Reason: j.Reason, Retransmit: j.Retransmit, Timer: j.Timer,
		Deadline: seconds(j.Deadline), Link: j.Link, Text: j.Text,
	}
	if j.Addr != "" {
		a, err := netip.ParseAddr(j.Addr)
		if err != nil {
			return fmt.Errorf("trace: addr: %w", err)
		}
		r.Addr = a
	}
	if j.Conn != "" {
		t, err := parseTuple(j.Conn)
		if err != nil {
			return err
		}
		r.Conn = t
	}
	if j.State != nil {
		r.HasState, r.State = true, *j.State
	}
	if j.Flags != nil {
		f, err := ParseFlags(*j.Flags)
		if err != nil {
			return err
		}
		r.HasSeg = true
		r.Seg = tcp.SegmentInfo{Seq: seqnum.Value(j.Seq), Ack: seqnum.Value(j.Ack), Flags: f, Window: j.Win, Len: j.Len}
	}
	return nil
}

// ParseFlags reads control bits as header.TCPFlags.String writes them:
// "SYN,ACK", "FIN,PSH,ACK", "none".
func ParseFlags(s string) (header.TCPFlags, error) {
	if s == "none" || s == "" {
		return 0, nil
	}
	var f header.TCPFlags
	for name := range strings.SplitSeq(s, ",") {
		g, ok := flagByName[strings.ToUpper(strings.TrimSpace(name))]
		if !ok {
			return 0, fmt.Errorf("trace: unknown TCP flag %q", name)
		}
		f |= g
	}
	return f, nil
}

var flagByName = map[string]header.TCPFlags{
	"FIN": header.FIN, "SYN": header.SYN, "RST": header.RST, "PSH": header.PSH,
	"ACK": header.ACK, "URG": header.URG, "ECE": header.ECE, "CWR": header.CWR,
}

// JSONWriter is a Sink that writes each record as one line of JSON. It
// keeps the first write error, reported by Err, and writes nothing after
// it.
type JSONWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// NewJSONWriter returns a JSONWriter writing to w.
func NewJSONWriter(w io.Writer) *JSONWriter { return &JSONWriter{w: w} }

// Emit writes r and a newline.
func (j *JSONWriter) Emit(r *Record) {
	if j.err != nil {
		return
	}
	j.buf = append(r.AppendJSON(j.buf[:0]), '\n')
	_, j.err = j.w.Write(j.buf)
}

// Err returns the first error writing failed with.
func (j *JSONWriter) Err() error { return j.err }

// WriteJSON writes recs as JSON lines.
func WriteJSON(w io.Writer, recs []Record) error {
	j := NewJSONWriter(w)
	for i := range recs {
		j.Emit(&recs[i])
	}
	return j.Err()
}

// ReadJSON reads JSON lines as WriteJSON writes them. Blank lines are
// skipped; a line that does not decode is an error naming its number.
func ReadJSON(r io.Reader) ([]Record, error) {
	var recs []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec Record
		if err := rec.UnmarshalJSON([]byte(line)); err != nil {
			return recs, fmt.Errorf("trace: line %d: %w", n, err)
		}
		recs = append(recs, rec)
	}
	return recs, sc.Err()
}

// tupleString writes a tuple as "local->remote", with "*" for an
// unspecified socket (a listener's remote end).
func tupleString(t tcp.Tuple) string {
	return addrPortString(t.Local) + "->" + addrPortString(t.Remote)
}

func addrPortString(a netip.AddrPort) string {
	if !a.IsValid() {
		return "*"
	}
	return a.String()
}

func parseTuple(s string) (tcp.Tuple, error) {
	l, r, ok := strings.Cut(s, "->")
	if !ok {
		return tcp.Tuple{}, fmt.Errorf("trace: conn %q: want local->remote", s)
	}
	var t tcp.Tuple
	var err error
	if t.Local, err = parseAddrPort(l); err != nil {
		return t, err
	}
	if t.Remote, err = parseAddrPort(r); err != nil {
		return t, err
	}
	return t, nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	if s == "*" {
		return netip.AddrPort{}, nil
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return a, fmt.Errorf("trace: conn: %w", err)
	}
	return a, nil
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'f', -1, 64)
}

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * 1e9)) }

// appendField appends ,"key":"value" with value escaped for JSON.
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
