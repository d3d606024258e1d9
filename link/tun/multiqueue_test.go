package tun

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMultiQueue opens a device with two queues (IFF_MULTI_QUEUE) and
// checks that the kernel spreads datagrams of many flows over both, that
// every one arrives on exactly one queue, and that a packet written on
// the extra queue reaches the kernel.
func TestMultiQueue(t *testing.T) {
	for _, noOff := range []bool{false, true} {
		name := "offload"
		if noOff {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			ns, d := setup(t, "tcpstmq", Options{Queues: 2, NoOffload: noOff})
			noIPv6(t, ns, d)
			extra := d.ExtraQueues()
			if len(extra) != 1 {
				t.Fatalf("ExtraQueues() has %d queues, want 1", len(extra))
			}
			q := extra[0].(*Device)
			if (d.Offload() == nil) != (q.Offload() == nil) {
				t.Fatalf("offloads differ between queues: %v and %v", d.Offload(), q.Offload())
			}

			const flows = 64
			var conns []*net.UDPConn
			err := ns.Do(func() error {
				for range flows {
					c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(kernelAddr, 0)))
					if err != nil {
						return err
					}
					conns = append(conns, c)
				}
				return nil
			})
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			if err != nil {
				t.Fatal(err)
			}
			var counts [2]atomic.Int64
			var total atomic.Int64
			var wg sync.WaitGroup
			timer := time.AfterFunc(10*time.Second, func() { d.Close() })
			defer timer.Stop()
			for i, dev := range []*Device{d, q} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bufs := [][]byte{make([]byte, 2048), make([]byte, 2048)}
					sizes := make([]int, len(bufs))
					match := isUDP4To(peerAddr, 7000)
					for total.Load() < flows {
						n, err := dev.ReadPackets(bufs, sizes)
						if err != nil {
							return
						}
						for j := range n {
							if match(bufs[j][:sizes[j]]) {
								counts[i].Add(1)
								if total.Add(1) == flows {
									// Wake the other reader.
									d.Close()
								}
							}
						}
					}
				}()
			}
			for _, c := range conns {
				if _, err := c.WriteToUDPAddrPort([]byte("mq"), netip.AddrPortFrom(peerAddr, 7000)); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			a, b := counts[0].Load(), counts[1].Load()
			t.Logf("queue 0 took %d datagrams, queue 1 %d", a, b)
			if a+b != flows {
				t.Fatalf("%d of %d datagrams arrived", a+b, flows)
			}
			if a == 0 || b == 0 {
				t.Fatalf("the kernel used one queue for all %d flows (%d, %d)", flows, a, b)
			}
		})
	}
}

// TestMultiQueueWrite checks that a packet written on the extra queue
// reaches the kernel's socket.
func TestMultiQueueWrite(t *testing.T) {
	ns, d := setup(t, "tcpstmq", Options{Queues: 2})
	conn, local := kernelUDP(t, ns)
	q := d.ExtraQueues()[0]
	if n, err := q.WritePackets([][]byte{udp4(peerAddr, kernelAddr, 7000, local.Port(), []byte("queue 1"))}); n != 1 || err != nil {
		t.Fatalf("WritePackets on queue 1 = %d, %v", n, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "queue 1" {
		t.Fatalf("socket got %q, %v", buf[:n], err)
	}
}
