//go:build linux

package netlab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The nfnetlink_queue protocol, from the kernel's UAPI headers
// include/uapi/linux/netfilter/nfnetlink.h and nfnetlink_queue.h; these
// are not in golang.org/x/sys/unix.
const (
	nfqMsgPacket  = 0 // NFQNL_MSG_PACKET: kernel to user
	nfqMsgVerdict = 1 // NFQNL_MSG_VERDICT: user to kernel
	nfqMsgConfig  = 2 // NFQNL_MSG_CONFIG

	nfqaPacketHdr  = 1 // NFQA_PACKET_HDR: be32 packet_id, be16 hw_protocol, u8 hook
	nfqaVerdictHdr = 2 // NFQA_VERDICT_HDR: be32 verdict, be32 id
	nfqaCfgCmd     = 1 // NFQA_CFG_CMD: u8 command, u8 pad, be16 pf
	nfqaCfgParams  = 2 // NFQA_CFG_PARAMS: be32 copy_range, u8 copy_mode

	nfqCmdBind  = 1 // NFQNL_CFG_CMD_BIND
	nfqCopyMeta = 1 // NFQNL_COPY_META: tell us the packet's id, not its bytes

	nfAccept = 1 // NF_ACCEPT (include/uapi/linux/netfilter.h)

	nlaTypeMask = 0x3fff // NLA_TYPE_MASK: the type without NESTED/BYTEORDER
)

// holder takes packets that an iptables NFQUEUE rule hands to user space
// and keeps them until it releases them: a way to delay chosen packets in
// the router (the kernel here has no netem or plug qdisc), used to make
// two FINs cross on the wire.
type holder struct {
	fd    int
	queue uint16
	seq   uint32
	// pending holds the ids of packets the kernel announced while
	// request was waiting for an acknowledgement.
	pending []uint32
}

// newHolder binds queue number queue in the router namespace. Packets
// the kernel queues there wait until release (or until close, when the
// kernel drops them).
func (l *Lab) newHolder(queue uint16) (*holder, error) {
	h := &holder{fd: -1, queue: queue}
	err := l.Router.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("nfqueue socket: %w", err)
		}
		h.fd = fd
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if err != nil {
		h.close()
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(h.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		h.close()
		return nil, err
	}
	cmd := []byte{nfqCmdBind, 0, 0, 0}
	params := binary.BigEndian.AppendUint32(nil, 0xffff)
	params = append(params, nfqCopyMeta)
	for _, a := range []struct {
		typ  uint16
		data []byte
	}{{nfqaCfgCmd, cmd}, {nfqaCfgParams, params}} {
		if err := h.request(nfqMsgConfig, nlAttr(a.typ, a.data)); err != nil {
			h.close()
			return nil, fmt.Errorf("nfqueue config: %w", err)
		}
	}
	return h, nil
}

func (h *holder) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// nlAttr encodes one netlink attribute, padded to 4 bytes.
func nlAttr(typ uint16, data []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends an nfnetlink message with an acknowledgement asked for
// and waits for it.
func (h *holder) request(msgType uint16, attrs []byte) error {
	h.seq++
	msg := make([]byte, 16, 20+len(attrs))
	binary.NativeEndian.PutUint32(msg[0:], uint32(20+len(attrs)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NFNL_SUBSYS_QUEUE<<8|msgType)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], h.seq)
	// struct nfgenmsg: family, version, res_id (the queue, big endian).
	msg = append(msg, unix.AF_UNSPEC, unix.NFNETLINK_V0, byte(h.queue>>8), byte(h.queue))
	msg = append(msg, attrs...)
	if err := unix.Sendto(h.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	deadline := time.Now().Add(WaitTimeout)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(h.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := parseNetlink(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			h.pending = append(h.pending, packetIDs(m)...)
			if m.typ == unix.NLMSG_ERROR && m.seq == h.seq {
				if len(m.body) < 4 {
					return errors.New("short netlink error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.body)); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			}
		}
	}
	return errors.New("no netlink acknowledgement")
}

type nlMsg struct {
	typ  uint16
	seq  uint32
	body []byte
}

// parseNetlink splits a datagram into netlink messages.
func parseNetlink(b []byte) ([]nlMsg, error) {
	var msgs []nlMsg
	for len(b) >= 16 {
		l := int(binary.NativeEndian.Uint32(b))
		if l < 16 || l > len(b) {
			return nil, fmt.Errorf("bad netlink message length %d", l)
		}
		msgs = append(msgs, nlMsg{
			typ:  binary.NativeEndian.Uint16(b[4:]),
			seq:  binary.NativeEndian.Uint32(b[8:]),
			body: b[16:l],
		})
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return msgs, nil
}

// collect waits until n packets are held, at most timeout, and returns
// their ids.
func (h *holder) collect(n int, timeout time.Duration) ([]uint32, error) {
	ids := h.pending
	h.pending = nil
	buf := make([]byte, 65536)
	deadline := time.Now().Add(timeout)
	for len(ids) < n {
		if time.Now().After(deadline) {
			return ids, fmt.Errorf("nfqueue: %d of %d packets held within %v", len(ids), n, timeout)
		}
		r, _, err := unix.Recvfrom(h.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ids, err
		}
		msgs, err := parseNetlink(buf[:r])
		if err != nil {
			return ids, err
		}
		for _, m := range msgs {
			ids = append(ids, packetIDs(m)...)
		}
	}
	if len(ids) > n {
		h.pending = append(h.pending, ids[n:]...)
		ids = ids[:n]
	}
	return ids, nil
}

// packetIDs returns the packet id of a queued-packet message, if m is
// one.
func packetIDs(m nlMsg) []uint32 {
	if m.typ != unix.NFNL_SUBSYS_QUEUE<<8|nfqMsgPacket || len(m.body) < 4 {
		return nil
	}
	// Attributes follow the 4-byte nfgenmsg.
	for a := m.body[4:]; len(a) >= 4; {
		al := int(binary.NativeEndian.Uint16(a))
		typ := binary.NativeEndian.Uint16(a[2:]) & nlaTypeMask
		if al < 4 || al > len(a) {
			return nil
		}
		if typ == nfqaPacketHdr && al >= 8 {
			return []uint32{binary.BigEndian.Uint32(a[4:])}
		}
		al = (al + 3) &^ 3
		if al > len(a) {
			return nil
		}
		a = a[al:]
	}
	return nil
}

// release lets the held packets with these ids go on their way.
func (h *holder) release(ids []uint32) error {
	for _, id := range ids {
		v := binary.BigEndian.AppendUint32(nil, nfAccept)
		v = binary.BigEndian.AppendUint32(v, id)
		if err := h.request(nfqMsgVerdict, nlAttr(nfqaVerdictHdr, v)); err != nil {
			return fmt.Errorf("nfqueue verdict for packet %d: %w", id, err)
		}
	}
	return nil
}
