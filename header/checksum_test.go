package header

import (
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refSum is RFC 1071 done the slow, obvious way: add big-endian 16-bit
// words one byte at a time into a wide accumulator, padding an odd final
// byte with zero. It is the reference the fast Checksum is tested against.
func refSum(b []byte) uint64 {
	var s uint64
	for i, c := range b {
		if i%2 == 0 {
			s += uint64(c) << 8
		} else {
			s += uint64(c)
		}
	}
	return s
}

func refFold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func refChecksum(b []byte) uint16 { return ^refFold(refSum(b)) }

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChecksumKnownAnswers(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		want uint16 // FinishChecksum(Checksum(b, 0))
	}{
		// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
		{"rfc1071", "0001f203f4f5f6f7", ^uint16(0xddf2)},
		{"empty", "", 0xffff},
		{"one byte", "01", ^uint16(0x0100)},
		{"odd", "0001f203f4f5f6", ^uint16(0x0001 + 0xf203 + 0xf4f5 + 0xf600 - 0xffff*2)},
		// An IPv4 header whose checksum field (b861) is zeroed.
		{"ipv4 header", "450000730000400040110000c0a80001c0a800c7", 0xb861},
		// The same header with its checksum in place verifies to zero.
		{"ipv4 verify", "45000073000040004011b861c0a80001c0a800c7", 0},
	}
	for _, c := range cases {
		b := mustHex(t, c.hex)
		if got := FinishChecksum(Checksum(b, 0)); got != c.want {
			t.Errorf("%s: got %#04x, want %#04x", c.name, got, c.want)
		}
		if got := refChecksum(b); got != c.want {
			t.Errorf("%s: reference got %#04x, want %#04x (test table wrong)", c.name, got, c.want)
		}
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	lengths := []int{1500, 1501, 9000, 65535, 65536, 70000}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		// Every start alignment, to catch tail handling mistakes.
		for start := 0; start < 8 && start+n <= len(buf); start++ {
			b := buf[start : start+n]
			init := r.Uint32()
			got := FinishChecksum(Checksum(b, init))
			want := ^refFold(refSum(b) + uint64(init))
			if got != want {
				t.Fatalf("len %d start %d init %#x: got %#04x, want %#04x", n, start, init, got, want)
			}
			if got, want := FinishChecksum(Checksum(b, 0)), refChecksum(b); got != want {
				t.Fatalf("len %d start %d: got %#04x, want %#04x", n, start, got, want)
			}
		}
	}
}

// Carries are where fast checksums go wrong: all-ones data makes every add
// carry.
func TestChecksumAllOnes(t *testing.T) {
	buf := make([]byte, 70000)
	for i := range buf {
		buf[i] = 0xff
	}
	for _, n := range []int{1, 2, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 1500, 65535, 70000} {
		for _, init := range []uint32{0, 1, 0xffff, 0x1fffe, 0xffffffff} {
			got := FinishChecksum(Checksum(buf[:n], init))
			want := ^refFold(refSum(buf[:n]) + uint64(init))
			if got != want {
				t.Errorf("len %d init %#x: got %#04x, want %#04x", n, init, got, want)
			}
		}
	}
}

func TestChecksumChains(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, r.IntN(200))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		split := r.IntN(len(b)+1) &^ 1 // the first piece must be even
		s := Checksum(b[split:], Checksum(b[:split], 0))
		if s > 0xffff {
			t.Fatalf("running sum %#x not folded to 16 bits", s)
		}
		if got, want := FinishChecksum(s), refChecksum(b); got != want {
			t.Fatalf("len %d split %d: got %#04x, want %#04x", len(b), split, got, want)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		var a, b [16]byte
		for i := range a {
			a[i], b[i] = byte(r.Uint32()), byte(r.Uint32())
		}
		length := r.IntN(70000)
		proto := uint8(r.Uint32())

		// IPv4 pseudo-header, RFC 9293 §3.1: src, dst, zero, PTCL, TCP length.
		src4, dst4 := netip.AddrFrom4([4]byte(a[:4])), netip.AddrFrom4([4]byte(b[:4]))
		ph := append(append([]byte{}, a[:4]...), b[:4]...)
		ph = append(ph, 0, proto, byte(length>>8), byte(length))
		got := FinishChecksum(PseudoHeaderSum(src4, dst4, proto, length))
		want := ^refFold(refSum(ph) + uint64(length>>16))
		if length <= 0xffff {
			want = refChecksum(ph)
		}
		if got != want {
			t.Fatalf("v4 %v %v %d %d: got %#04x, want %#04x", src4, dst4, proto, length, got, want)
		}

		// IPv6 pseudo-header, RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next header.
		src6, dst6 := netip.AddrFrom16(a), netip.AddrFrom16(b)
		ph = append(append([]byte{}, a[:]...), b[:]...)
		ph = append(ph, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
		if got, want := FinishChecksum(PseudoHeaderSum(src6, dst6, proto, length)), refChecksum(ph); got != want {
			t.Fatalf("v6 %v %v %d %d: got %#04x, want %#04x", src6, dst6, proto, length, got, want)
		}
	}
	// The zero Addr contributes nothing and does not panic.
	if got := PseudoHeaderSum(netip.Addr{}, netip.Addr{}, 6, 20); got != 26 {
		t.Errorf("zero addrs: got %d, want 26", got)
	}
}
