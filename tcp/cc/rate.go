package cc

import "time"

// RateSample is one delivery-rate sample, taken by the connection for
// every ACK that delivers data (draft-cheng-iccrg-delivery-rate-estimation,
// "Delivery Rate Estimation"): how much was delivered between the sending
// of the most recently sent segment this ACK delivered and now, and over
// how long. A rate-based algorithm builds its model of the path from these.
type RateSample struct {
	// Now is when the ACK arrived.
	Now time.Time

	// Delivered is C.delivered after this ACK: the bytes delivered,
	// cumulatively acknowledged or SACKed, over the connection's life.
	Delivered int64

	// PriorDelivered is P.delivered of the most recently sent segment
	// this ACK delivered: C.delivered when that segment was sent. A
	// round trip ends when it reaches the C.delivered of the round's start.
	PriorDelivered int64

	// DeliveredBytes is Delivered - PriorDelivered: the bytes delivered
	// over Interval.
	DeliveredBytes int64

	// Interval is the longer of the send and the ACK intervals the sample
	// spans (the draft's max(send_elapsed, ack_elapsed)), so that neither a
	// burst of ACKs nor a burst of sends inflates the rate. It is zero when
	// the ACK gave no valid sample: nothing newly delivered, or an interval
	// shorter than the least RTT seen, which ACK compression can produce.
	Interval time.Duration

	// AppLimited is set when the segment was sent while the application,
	// not the windows, limited the sender: the rate then says only that
	// the path can do at least this much.
	AppLimited bool

	// RTT is the round trip of the most recently sent segment this ACK
	// delivered, measured from its last transmission; zero when it was
	// retransmitted and the sample would be ambiguous (Karn's rule).
	RTT time.Duration

	// Acked is the bytes this ACK newly delivered, cumulatively or by SACK.
	Acked int

	// Lost is the bytes newly deemed lost while taking this ACK.
	Lost int

	// InFlight is the bytes in flight after the ACK was taken.
	InFlight int
}

// Rate returns the sample's delivery rate in bytes per second, or 0 when
// it holds no valid sample.
func (r RateSample) Rate() float64 {
	if r.Interval <= 0 || r.DeliveredBytes <= 0 {
		return 0
	}
	return float64(r.DeliveredBytes) / r.Interval.Seconds()
}

// RateController is an Algorithm that works from delivery-rate samples and
// paces what it sends, as BBR does. A connection whose algorithm is one
// takes a RateSample for every ACK that delivers data, in loss recovery
// too, and spaces its segments by PacingRate.
type RateController interface {
	Algorithm

	// OnRateSample takes the sample of one ACK. It is called after the
	// ACK's loss detection, before the connection sends again.
	OnRateSample(rs RateSample)

	// PacingRate is the rate in bytes per second the connection sends at;
	// zero means unpaced.
	PacingRate() float64

	// SendQuantum is the most the connection may send at once ahead of
	// the pacing schedule, in bytes.
	SendQuantum() int

	// Bandwidth is the algorithm's estimate of the path's bottleneck
	// bandwidth in bytes per second; zero before it has one.
	Bandwidth() float64

	// Delivered is the last sample's Delivered: a connection that starts
	// a fresh record of what is in flight numbers its samples on from it.
	Delivered() int64
}
