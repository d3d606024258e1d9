package trace

import (
	"bufio"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// EventWriter is a tcp.Observer that writes every event it is handed as a
// Record in JSON lines, for a trace file of a running stack. It is safe
// for concurrent use: a stack calls it from whichever goroutine drives
// each connection.
//
// Records are numbered into steps as the ladder renderer expects: a step
// begins with each arriving segment, user call or timer expiry of a
// connection, and the events that follow on that connection belong to it.
// Times are counted from start.
type EventWriter struct {
	mu    sync.Mutex
	w     *bufio.Writer
	host  string
	start time.Time
	step  uint64
	steps map[tcp.Tuple]uint64
	buf   []byte
	err   error
}

// NewEventWriter returns an EventWriter writing to w, naming the host
// whose connections it records host, and counting time from start. It
// writes a first record introducing the host, with its address addr when
// valid and the wall-clock start in the text. Call Flush when done.
func NewEventWriter(w io.Writer, host string, addr netip.Addr, start time.Time) *EventWriter {
	e := &EventWriter{w: bufio.NewWriterSize(w, 64<<10), host: host, start: start, steps: map[tcp.Tuple]uint64{}}
	e.write(&Record{Host: host, Addr: addr, Kind: KindHost, Text: "trace started " + start.UTC().Format(time.RFC3339Nano)})
	return e
}

// Observe writes the event as a Record.
func (e *EventWriter) Observe(ev *tcp.Event) {
	r := FromEvent(ev, e.start, e.host)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev.Type {
	case tcp.EventSegmentIn, tcp.EventCall, tcp.EventTimerFired:
		e.step++
		e.steps[ev.Conn] = e.step
	default:
		if _, ok := e.steps[ev.Conn]; !ok {
			e.step++
			e.steps[ev.Conn] = e.step
		}
	}
	r.Step = e.steps[ev.Conn]
	if ev.Type == tcp.EventState && ev.To == tcp.Closed {
		delete(e.steps, ev.Conn) // the connection is over; its next life starts afresh
	}
	e.writeLocked(&r)
}

func (e *EventWriter) write(r *Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writeLocked(r)
}

func (e *EventWriter) writeLocked(r *Record) {
	if e.err != nil {
		return
	}
	e.buf = append(r.AppendJSON(e.buf[:0]), '\n')
	_, e.err = e.w.Write(e.buf)
}

// Flush writes what is buffered and returns the first error writing met.
func (e *EventWriter) Flush() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}
