package tcp

import "syscall"

// Error is an error a connection reports to its user, in the words of
// RFC 9293 §3.9.1 ("connection reset", "connection refused", ...). Each
// matches the errno a Go programmer checks for, so
// errors.Is(err, syscall.ECONNRESET) holds for ErrConnectionReset.
type Error struct {
	msg     string
	errno   syscall.Errno
	timeout bool
}

func (e *Error) Error() string { return "tcp: " + e.msg }

// Is matches the error itself and the errno it stands for.
func (e *Error) Is(target error) bool {
	if t, ok := target.(syscall.Errno); ok {
		return e.errno != 0 && t == e.errno
	}
	return target == error(e)
}

// Timeout reports whether the error is a timeout, as net.Error asks.
func (e *Error) Timeout() bool { return e.timeout }

// Temporary is false for every connection error; it is here for net.Error.
func (e *Error) Temporary() bool { return false }

// The errors of RFC 9293 §3.9.1 and §3.10.
var (
	ErrConnectionExists   = &Error{msg: "connection already exists", errno: syscall.EISCONN}
	ErrNotConnected       = &Error{msg: "connection does not exist", errno: syscall.ENOTCONN}
	ErrConnectionClosing  = &Error{msg: "connection closing", errno: syscall.EPIPE}
	ErrConnectionReset    = &Error{msg: "connection reset", errno: syscall.ECONNRESET}
	ErrConnectionRefused  = &Error{msg: "connection refused", errno: syscall.ECONNREFUSED}
	ErrConnectionAborted  = &Error{msg: "connection aborted", errno: syscall.ECONNABORTED}
	ErrTimeout            = &Error{msg: "connection timed out", errno: syscall.ETIMEDOUT, timeout: true}
	ErrUserTimeout        = &Error{msg: "connection aborted due to user timeout", errno: syscall.ETIMEDOUT, timeout: true}
	ErrForeignUnspecified = &Error{msg: "foreign socket unspecified", errno: syscall.EDESTADDRREQ}
)
