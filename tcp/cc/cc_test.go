package cc

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"
)

var (
	_ Algorithm      = (*Cubic)(nil)
	_ Algorithm      = (*NewReno)(nil)
	_ RateController = (*BBR)(nil)
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		err        bool
	}{
		{"", "cubic", false},
		{"cubic", "cubic", false},
		{"newreno", "newreno", false},
		{"reno", "newreno", false},
		{"bbr", "bbr", false},
		{"bbr2", "", true},
		{"CUBIC", "", true},
		{"cubic ", "", true},
	} {
		a, err := New(tc.name, Config{MSS: 1460})
		if tc.err {
			if err == nil || a != nil {
				t.Errorf("New(%q) = %v, %v; want an error", tc.name, a, err)
			} else if !strings.Contains(err.Error(), "unknown congestion control") {
				t.Errorf("New(%q) error %q", tc.name, err)
			}
			continue
		}
		if err != nil || a.Name() != tc.want {
			t.Errorf("New(%q) = %v, %v; want %s", tc.name, a, err, tc.want)
			continue
		}
		if a.CWnd() != 14600 || a.SSThresh() != maxWindow {
			t.Errorf("New(%q): cwnd %d ssthresh %d, want 14600 %d", tc.name, a.CWnd(), a.SSThresh(), maxWindow)
		}
	}
	for _, n := range Names {
		if _, err := New(n, Config{}); err != nil {
			t.Errorf("Names lists %q but New refuses it: %v", n, err)
		}
	}
	if Names[0] != "cubic" {
		t.Errorf("the default, first in Names, is %q", Names[0])
	}
}

// check fails t if a's windows are out of bounds or, for CUBIC, any of its
// numbers is not finite.
func check(t *testing.T, a Algorithm, mss int, step string) {
	t.Helper()
	if a.CWnd() < mss || a.CWnd() > maxWindow {
		t.Fatalf("%s: cwnd %d outside [%d, %d]", step, a.CWnd(), mss, maxWindow)
	}
	if a.SSThresh() < 2*mss || a.SSThresh() > maxWindow {
		t.Fatalf("%s: ssthresh %d outside [%d, %d]", step, a.SSThresh(), 2*mss, maxWindow)
	}
	if c, ok := a.(*Cubic); ok {
		for _, v := range []float64{c.cwnd, c.wMax, c.k, c.wEst, c.cwndPrior} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 2*maxWindow {
				t.Fatalf("%s: not a sane number: cwnd %v W_max %v K %v W_est %v cwnd_prior %v",
					step, c.cwnd, c.wMax, c.k, c.wEst, c.cwndPrior)
			}
		}
	}
}

// Extreme inputs leave the windows in bounds and the numbers finite.
func TestExtremes(t *testing.T) {
	far := time.Unix(1<<40, 0)
	acks := []Ack{
		{Now: t0, Acked: math.MaxInt, InFlight: math.MaxInt, SRTT: math.MaxInt64},
		{Now: far, Acked: math.MaxInt, InFlight: -1, RTT: -1, SRTT: 1, MinRTT: 1},
		{Now: time.Time{}, Acked: 1, InFlight: math.MinInt, SRTT: -5},
		{Now: t0, Acked: math.MinInt},
		{Now: far, Acked: 1, MinRTT: math.MaxInt64},
		{Now: t0.Add(-time.Hour), Acked: 1 << 20},
		{Now: far, Acked: 1 << 30, AppLimited: true},
	}
	for _, cfg := range []Config{
		{MSS: 1, InitialWindow: 1},
		{MSS: -1, InitialWindow: -1},
		{MSS: math.MaxInt, InitialWindow: math.MaxInt},
		{MSS: 65535, InitialWindow: 1 << 20},
		{MSS: 1460},
	} {
		for _, name := range Names {
			a, _ := New(name, cfg)
			mss, _ := sizes(cfg)
			for round := range 200 {
				for i, ev := range acks {
					a.OnAck(ev)
					check(t, a, mss, name+" ack")
					switch (round + i) % 7 {
					case 0:
						a.OnCongestion(ev.Now, ev.InFlight)
					case 1:
						a.OnRecoveryEnd(ev.Now)
					case 2:
						a.OnTimeout(ev.Now, ev.InFlight)
					case 3:
						a.OnIdle(ev.Now)
					}
					check(t, a, mss, name+" event")
				}
			}
		}
	}
}

// fuzzEvents drives a with the event sequence encoded in data, four bytes
// an event, and checks the bounds after each.
func fuzzEvents(t *testing.T, name string, mss16 uint16, iw uint8, data []byte) {
	cfg := Config{MSS: int(mss16), InitialWindow: int(iw)}
	a, err := New(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mss, _ := sizes(cfg)
	now := t0
	srtt := time.Duration(0)
	congested := false
	var delivered int64
	for len(data) >= 4 {
		op, arg := data[0], binary.BigEndian.Uint16(data[1:3])
		scale := data[3]
		data = data[4:]
		// Time moves forward mostly, by up to a few days at once.
		now = now.Add(time.Duration(arg) * time.Duration(scale%16+1) * time.Millisecond * time.Duration(1+scale/64*100))
		n := int(arg) << (scale % 24)
		switch op % 8 {
		case 0, 1, 2:
			a.OnAck(Ack{Now: now, Acked: n, InFlight: max(a.CWnd(), n), RTT: srtt, SRTT: srtt, MinRTT: srtt / 2, AppLimited: op&0x80 != 0})
			if rc, ok := a.(RateController); ok {
				delivered += int64(n)
				rc.OnRateSample(RateSample{Now: now, Delivered: delivered, PriorDelivered: delivered - int64(n)*int64(op%3+1),
					DeliveredBytes: int64(n) * int64(op%3+1), Interval: srtt * time.Duration(op%3), Acked: n,
					Lost: int(arg) * int(op&0x40>>6), InFlight: int(arg) << (scale % 16), AppLimited: op&0x80 != 0, RTT: srtt})
				if r := rc.PacingRate(); r < 0 || math.IsNaN(r) || math.IsInf(r, 0) || rc.SendQuantum() < mss {
					t.Fatalf("pacing rate %v, quantum %d", r, rc.SendQuantum())
				}
			}
		case 3:
			srtt = time.Duration(n) * time.Microsecond
		case 4:
			a.OnCongestion(now, n)
			congested = true
		case 5:
			a.OnRecoveryEnd(now)
		case 6:
			a.OnTimeout(now, n)
			congested = true
		case 7:
			if op&0x80 != 0 {
				now = now.Add(-time.Duration(arg) * time.Millisecond) // a clock step back
			} else {
				a.OnIdle(now)
			}
		}
		check(t, a, mss, name)
		if congested && a.SSThresh() < 2*mss {
			t.Fatalf("ssthresh %d below 2*SMSS after a congestion event", a.SSThresh())
		}
	}
}

func addSeeds(f *testing.F) {
	f.Add(uint16(1460), uint8(10), []byte{0, 0, 1, 0, 4, 0, 100, 0, 5, 0, 0, 0, 0, 0, 1, 0})
	f.Add(uint16(1), uint8(0), []byte{3, 0, 100, 10, 0, 255, 255, 23, 6, 0, 1, 0, 0, 1, 0, 0, 7, 0, 0, 0})
	f.Add(uint16(65535), uint8(255), []byte{0, 255, 255, 255, 0x84, 1, 1, 1, 0x80, 1, 0, 3, 0x87, 255, 255, 0})
	f.Add(uint16(0), uint8(1), []byte{4, 0, 0, 0, 0, 0, 10, 0, 1, 0, 10, 0, 2, 0, 10, 0, 6, 0, 0, 0, 6, 0, 0, 0})
}

// FuzzCubic drives CUBIC with random event sequences and checks that cwnd
// stays at least one SMSS, that ssthresh is at least 2*SMSS after a
// congestion event, and that no number becomes NaN or infinite.
func FuzzCubic(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, mss uint16, iw uint8, data []byte) {
		fuzzEvents(t, "cubic", mss, iw, data)
	})
}

// FuzzNewReno does the same for NewReno.
func FuzzNewReno(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, mss uint16, iw uint8, data []byte) {
		fuzzEvents(t, "newreno", mss, iw, data)
	})
}

// driveCA puts a in congestion avoidance, as after a loss at 1000
// segments, and returns an ACK template for it.
func driveCA(a Algorithm) Ack {
	a.OnCongestion(t0, 2000*1460)
	a.OnRecoveryEnd(t0)
	return Ack{Now: t0, Acked: 1460, InFlight: a.CWnd(), RTT: 50 * time.Millisecond, SRTT: 50 * time.Millisecond, MinRTT: 40 * time.Millisecond}
}

func TestOnAckAllocs(t *testing.T) {
	for _, name := range Names {
		a, _ := New(name, Config{MSS: 1460})
		ev := driveCA(a)
		allocs := testing.AllocsPerRun(1000, func() {
			ev.Now = ev.Now.Add(50 * time.Microsecond)
			a.OnAck(ev)
		})
		if allocs != 0 {
			t.Errorf("%s: OnAck allocates %v times per call", name, allocs)
		}
	}
}

// BenchmarkOnAck measures one ACK in congestion avoidance, with a
// congestion event every 100000 ACKs to keep the window realistic.
func BenchmarkOnAck(b *testing.B) {
	for _, name := range Names {
		b.Run(name, func(b *testing.B) {
			a, _ := New(name, Config{MSS: 1460})
			ev := driveCA(a)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev.Now = ev.Now.Add(50 * time.Microsecond)
				a.OnAck(ev)
				if i++; i%100000 == 0 {
					a.OnCongestion(ev.Now, a.CWnd())
					a.OnRecoveryEnd(ev.Now)
				}
			}
		})
	}
}
