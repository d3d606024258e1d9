package track

import "net/netip"

// tuple is a connection's client and server in compact form: 20 bytes
// instead of two netip.AddrPort (64). An IPv4 tuple is held inline; any
// other (IPv6, IPv4-mapped IPv6, zoned) keeps its two addresses in a
// small side allocation, as such tuples are the rarer ones. Callers see
// netip.AddrPort only (Conn.Client, Conn.Server, the views).
type tuple struct {
	v6   *[2]netip.Addr // client and server when either is not plain IPv4, else nil
	v4   [2][4]byte     // client and server IPv4 addresses (v6 nil)
	port [2]uint16      // client and server ports
}

// makeTuple packs client and server.
func makeTuple(client, server netip.AddrPort) tuple {
	u := tuple{port: [2]uint16{client.Port(), server.Port()}}
	ca, sa := client.Addr(), server.Addr()
	if ca.Is4() && sa.Is4() {
		u.v4 = [2][4]byte{ca.As4(), sa.As4()}
		return u
	}
	u.v6 = &[2]netip.Addr{ca, sa}
	return u
}

// at is endpoint i (0 client, 1 server).
func (u *tuple) at(i int) netip.AddrPort {
	if u.v6 != nil {
		return netip.AddrPortFrom(u.v6[i], u.port[i])
	}
	return netip.AddrPortFrom(netip.AddrFrom4(u.v4[i]), u.port[i])
}

// is reports whether endpoint i is a.
func (u *tuple) is(i int, a netip.AddrPort) bool {
	if a.Port() != u.port[i] {
		return false
	}
	ad := a.Addr()
	if u.v6 != nil {
		return u.v6[i] == ad
	}
	return ad.Is4() && ad.As4() == u.v4[i]
}

// matches reports whether {a, b} is u's pair, in either order.
func (u *tuple) matches(a, b netip.AddrPort) bool {
	return u.is(0, a) && u.is(1, b) || u.is(0, b) && u.is(1, a)
}

// Client is the connection's client (see the package comment).
func (c *Conn) Client() netip.AddrPort { return c.tu.at(0) }

// Server is the connection's server.
func (c *Conn) Server() netip.AddrPort { return c.tu.at(1) }
