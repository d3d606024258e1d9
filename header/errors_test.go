package header

import (
	"errors"
	"io"
	"testing"
)

func TestErrorStrings(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&Error{Layer: "tcp", Kind: KindBadDataOffset, Offset: 12, Value: 3}, "tcp: bad data offset 3 (at byte 12)"},
		{&Error{Layer: "ipv4", Kind: KindTruncated, Offset: 12, Value: 20}, "ipv4: truncated: need 20 bytes, have 12"},
		{&Error{Layer: "ipv6", Kind: KindShortBuffer, Offset: 50, Value: 60}, "ipv6: buffer too small: need 60 bytes, have 50"},
		{&Error{Layer: "ip", Kind: KindBadVersion, Offset: 0, Value: 5}, "ip: bad version 5 (at byte 0)"},
		{&Error{Layer: "ipv4", Kind: KindBadHeaderLength, Offset: 0, Value: 4}, "ipv4: bad header length 4 (at byte 0)"},
		{&Error{Layer: "ipv4", Kind: KindBadTotalLength, Offset: 2, Value: 61}, "ipv4: bad total length 61 (at byte 2)"},
		{&Error{Layer: "tcp option", Kind: KindBadOptionLength, Offset: 21, Value: 3}, "tcp option: bad option length 3 (at byte 21)"},
		{&Error{Layer: "tcp option", Kind: KindBadOptionLength, Offset: 21, Value: -1}, "tcp option: bad option length (at byte 21)"},
		{&Error{Layer: "tcp", Kind: KindBadChecksum, Offset: 36, Value: -1}, "tcp: bad checksum (at byte 36)"},
		{&Error{Layer: "ipv4", Kind: KindNotTCP, Offset: 9, Value: 17}, "ipv4: not TCP (protocol 17) (at byte 9)"},
		{&Error{Layer: "ipv6", Kind: KindNotTCP, Offset: 40, Value: -1}, "ipv6: not TCP (at byte 40)"},
		{&Error{Layer: "ipv6", Kind: KindFragment, Offset: 48, Value: -1}, "ipv6: fragment (at byte 48)"},
		{&Error{Layer: "ipv4", Kind: KindBadAddress, Offset: 16, Value: -1}, "ipv4: bad address (at byte 16)"},
		{ErrTruncated, "header: truncated"},
		{ErrNotTCP, "header: not TCP"},
		{&Error{Layer: "x", Kind: 99}, "x: ErrorKind(99) 0 (at byte 0)"},
	}
	for _, c := range cases {
		if got := c.err.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	err := error(&Error{Layer: "tcp", Kind: KindBadChecksum, Offset: 36})
	if !errors.Is(err, ErrBadChecksum) || errors.Is(err, ErrTruncated) || errors.Is(err, io.EOF) {
		t.Error("Is by kind")
	}
	if !errors.Is(err, &Error{Layer: "tcp", Kind: KindBadChecksum, Offset: 99}) ||
		errors.Is(err, &Error{Layer: "ipv4", Kind: KindBadChecksum}) {
		t.Error("Is by layer")
	}
	if err.(*Error).Is((*Error)(nil)) {
		t.Error("matched a nil *Error")
	}
	// Wrapped errors are still recognised.
	wrapped := errors.Join(io.EOF, err)
	var e *Error
	if !errors.Is(wrapped, ErrBadChecksum) || !errors.As(wrapped, &e) || e.Offset != 36 {
		t.Error("wrapped")
	}
}

func TestFlags(t *testing.T) {
	cases := []struct {
		f    TCPFlags
		want string
	}{
		{0, "none"}, {SYN, "SYN"}, {SYN | ACK, "SYN,ACK"}, {FIN | ACK, "FIN,ACK"}, {RST, "RST"},
		{0xff, "SYN,FIN,RST,PSH,ACK,URG,ECE,CWR"},
	}
	for _, c := range cases {
		if got := c.f.String(); got != c.want {
			t.Errorf("%#x: got %q, want %q", uint8(c.f), got, c.want)
		}
	}
	if !(SYN | ACK).Has(ACK) || !(SYN | ACK).Has(SYN|ACK) || SYN.Has(SYN|ACK) {
		t.Error("Has")
	}
}
