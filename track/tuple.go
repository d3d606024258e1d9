package track

import "net/netip"

// A connection's client and server are held in compact form: 12 bytes
// instead of two netip.AddrPort (64). An IPv4 pair is held inline (the
// Conn fields v4 and port); any other (IPv6, IPv4-mapped IPv6, zoned)
// keeps its two addresses in the connection's extension (connExt.v6), as
// such connections are the rarer ones. Callers see netip.AddrPort only
// (Conn.Client, Conn.Server, the views).

// setTuple stores client and server.
func (c *Conn) setTuple(client, server netip.AddrPort) {
	c.port = [2]uint16{client.Port(), server.Port()}
	ca, sa := client.Addr(), server.Addr()
	if ca.Is4() && sa.Is4() {
		c.v4 = [2][4]byte{ca.As4(), sa.As4()}
		if c.x != nil {
			c.x.v6 = nil
		}
		return
	}
	c.v4 = [2][4]byte{}
	c.ext().v6 = &[2]netip.Addr{ca, sa}
}

// isV6 reports whether c's pair is not plain IPv4 (held in v6).
func (c *Conn) isV6() bool { return c.x != nil && c.x.v6 != nil }

// at is endpoint i (0 client, 1 server).
func (c *Conn) at(i int) netip.AddrPort {
	if c.isV6() {
		return netip.AddrPortFrom(c.x.v6[i], c.port[i])
	}
	return netip.AddrPortFrom(netip.AddrFrom4(c.v4[i]), c.port[i])
}

// is reports whether endpoint i is a.
func (c *Conn) is(i int, a netip.AddrPort) bool {
	if a.Port() != c.port[i] {
		return false
	}
	ad := a.Addr()
	if c.isV6() {
		return c.x.v6[i] == ad
	}
	return ad.Is4() && ad.As4() == c.v4[i]
}

// matches reports whether {a, b} is c's pair, in either order.
func (c *Conn) matches(a, b netip.AddrPort) bool {
	return c.is(0, a) && c.is(1, b) || c.is(0, b) && c.is(1, a)
}

// Client is the connection's client (see the package comment).
func (c *Conn) Client() netip.AddrPort { return c.at(0) }

// Server is the connection's server.
func (c *Conn) Server() netip.AddrPort { return c.at(1) }
