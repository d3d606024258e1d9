package sim

import (
	"time"

	"github.com/tcpstate/tcpstate/tcp"
)

// Conn is a connection in the simulation: a tcp.Conn on a host, plus a
// small model of the application using it. Each call is a step at the
// World's current time; schedule calls with World.At to make them happen
// later.
//
// The application model: Write queues all it is given and feeds it to the
// connection as buffer space allows (WriteStream does the same for bytes
// made on demand); Close waits for that queue to drain and for the
// handshake (then CLOSE sends the FIN after the data, as RFC 9293 §3.10.4
// asks); and unless SetAutoRead(false), everything that arrives is read at
// once and kept (Received), or handed to the function OnRead set.
type Conn struct {
	host    *Host
	tc      *tcp.Conn
	passive bool
	removed bool
	last    tcp.State
	onState func(c *Conn, from, to tcp.State)

	timerArmed bool
	timerAt    time.Duration

	autoRead  bool
	received  []byte
	nread     int64
	onRead    func(p []byte)
	pending   []byte
	pendBuf   []byte // pending's backing array, reused once drained
	stream    int64  // bytes WriteStream still has to make
	streamOff int64  // offset of the next of them
	fill      func(off int64, p []byte)
	closeReq  bool
	closeDone bool
	err       error
}

// TCP returns the underlying connection, for inspection. Calling its
// methods directly bypasses the simulation's bookkeeping.
func (c *Conn) TCP() *tcp.Conn { return c.tc }

// Host returns the host the connection belongs to.
func (c *Conn) Host() *Host { return c.host }

// ID returns the connection's tuple as its host sees it.
func (c *Conn) ID() tcp.Tuple { return c.tc.ID() }

// State returns the connection's state.
func (c *Conn) State() tcp.State { return c.tc.State() }

// Passive reports whether a listener created the connection.
func (c *Conn) Passive() bool { return c.passive }

// Removed reports whether the connection has left its host's
// demultiplexer: it is CLOSED (or was reset back to LISTEN).
func (c *Conn) Removed() bool { return c.removed }

// Err returns the first error a call of the application model met, or
// else why the connection ended (tcp.ErrConnectionReset, ...), or nil.
func (c *Conn) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.tc.Err()
}

// Received returns every byte the application model has read, unless
// OnRead took them.
func (c *Conn) Received() []byte { return c.received }

// ReceivedLen returns how many bytes the application model has read,
// whether it kept them or handed them to OnRead.
func (c *Conn) ReceivedLen() int64 { return c.nread }

// OnRead hands every byte the application model reads to f instead of
// keeping it, for transfers too large to keep; p is valid only during the
// call. nil goes back to keeping them.
func (c *Conn) OnRead(f func(p []byte)) { c.onRead = f }

// EOF reports whether the peer's FIN has arrived and every byte before it
// has been read.
func (c *Conn) EOF() bool { return c.tc.ReadClosed() && c.tc.Readable() == 0 }

// Unsent returns how many written bytes still wait for room in the
// connection's send buffer.
func (c *Conn) Unsent() int64 { return int64(len(c.pending)) + c.stream }

// SetAutoRead turns the application model's reading on (the default) or
// off. With it off, received data stays in the connection, its window
// closes, and Read takes it.
func (c *Conn) SetAutoRead(on bool) {
	c.autoRead = on
	if on {
		c.host.call(c, func(time.Time) {})
	}
}

// OnState sets a function called after each step that changed the
// connection's state, with the state before the step and after it.
// Intermediate states within one step are not reported here; the trace
// has them.
func (c *Conn) OnState(f func(c *Conn, from, to tcp.State)) { c.onState = f }

// Write queues p for sending (the SEND call): as much as fits goes into
// the connection now, the rest as acknowledgments make room.
func (c *Conn) Write(p []byte) {
	if len(c.pending) == 0 && c.pendBuf != nil {
		c.pending = c.pendBuf[:0]
	}
	c.pending = append(c.pending, p...)
	c.pendBuf = c.pending
	c.host.call(c, func(time.Time) {})
}

// WriteStream queues n more bytes for sending, after anything already
// written, without holding them: as the connection's send buffer makes
// room, fill is asked for the bytes at stream offsets [off, off+len(p))
// — counted from the first byte WriteStream ever queued on c — and writes
// them into p. A stream of gigabytes costs no memory, and fill can make
// bytes the receiver checks by their offset. fill, once given, stays;
// nil keeps it.
func (c *Conn) WriteStream(n int64, fill func(off int64, p []byte)) {
	if fill != nil {
		c.fill = fill
	}
	if n > 0 {
		c.stream += n
	}
	c.host.call(c, func(time.Time) {})
}

// Read takes received data (the RECEIVE call), for use with auto-read
// off.
func (c *Conn) Read(p []byte) (n int, err error) {
	c.host.call(c, func(now time.Time) { n, err = c.tc.Read(now, p) })
	return n, err
}

// Close closes the connection (the CLOSE call) once everything written
// has gone into it and, for an active open, once the handshake is done,
// like an application whose connect() has returned; the FIN follows the
// data. (CLOSE in SYN-SENT would delete the connection, RFC 9293
// §3.10.4; use TCP().Close for that.)
func (c *Conn) Close() {
	c.closeReq = true
	c.host.call(c, func(time.Time) {})
}

// Abort aborts the connection (the ABORT call): queued data is dropped,
// and a synchronized connection sends RST.
func (c *Conn) Abort() {
	c.pending = c.pending[:0]
	c.stream = 0
	c.closeReq = false
	c.host.call(c, func(now time.Time) {
		if err := c.tc.Abort(now); err != nil && c.err == nil {
			c.err = err
		}
	})
}

// pump is the application model's turn after each step: read what
// arrived, write what waits, close when asked and drained.
func (c *Conn) pump(now time.Time) {
	if c.removed {
		return
	}
	for {
		progress := false
		if c.autoRead && c.tc.Readable() > 0 {
			buf := c.host.readBuf()
			n, _ := c.tc.Read(now, buf)
			c.nread += int64(n)
			if c.onRead != nil {
				c.onRead(buf[:n])
			} else {
				c.received = append(c.received, buf[:n]...)
			}
			progress = n > 0
		}
		if len(c.pending) > 0 && c.tc.Writable() > 0 {
			n, err := c.tc.Write(now, c.pending)
			c.pending = c.pending[n:]
			if err != nil {
				if c.err == nil {
					c.err = err
				}
				c.pending = c.pending[:0]
			}
			progress = progress || n > 0
		}
		if len(c.pending) == 0 && c.stream > 0 && c.tc.Writable() > 0 {
			buf := c.host.writeBuf()
			k := int(min(int64(len(buf)), int64(c.tc.Writable()), c.stream))
			if c.fill != nil {
				c.fill(c.streamOff, buf[:k])
			}
			n, err := c.tc.Write(now, buf[:k])
			c.stream -= int64(n)
			c.streamOff += int64(n)
			if err != nil {
				if c.err == nil {
					c.err = err
				}
				c.stream = 0
			}
			progress = progress || n > 0
		}
		if !progress {
			break
		}
	}
	if c.tc.State() == tcp.Closed {
		c.pending = c.pending[:0]
		c.stream = 0
	}
	if c.closeReq && !c.closeDone && len(c.pending) == 0 && c.stream == 0 && c.tc.State() != tcp.SynSent {
		c.closeDone = true
		if err := c.tc.Close(now); err != nil && c.err == nil {
			c.err = err
		}
	}
}

// reschedule queues a timer event for the connection's next deadline.
func (c *Conn) reschedule() {
	d := c.tc.Deadline()
	if d.IsZero() {
		c.timerArmed = false
		return
	}
	w := c.host.w
	at := max(d.Sub(Epoch), w.now)
	if c.timerArmed && c.timerAt == at {
		return
	}
	c.timerArmed, c.timerAt = true, at
	w.push(event{at: at, kind: evTimer, conn: c})
}

func (h *Host) readBuf() []byte {
	if h.rbuf == nil {
		h.rbuf = make([]byte, 64<<10)
	}
	return h.rbuf
}

func (h *Host) writeBuf() []byte {
	if h.wbuf == nil {
		h.wbuf = make([]byte, 64<<10)
	}
	return h.wbuf
}
