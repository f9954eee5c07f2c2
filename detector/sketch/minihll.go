package sketch

import (
	"errors"
	"math"
	"math/bits"
)

// miniPrecision gives MiniHLL 2^6 = 64 one-byte registers: 64 bytes per
// key, 128 hex digits in a fleet record (the size of the carpet's host
// bitmap), a standard error of 1.04/sqrt(64) = 13 % past the small range
// and a few percent below it (linear counting, up to 160 distinct).
const miniPrecision = 6

// MiniRegisters is the number of a MiniHLL's registers.
const MiniRegisters = 1 << miniPrecision

// miniMaxRank is the largest rank a register can hold: the guard bit
// below the index bounds the leading zeros.
const miniMaxRank = 64 - miniPrecision + 1

// MiniHLL is a HyperLogLog distinct counter small enough to keep per key
// of a rate rule and to publish every fleet interval: several sensors'
// counters of one key merge into the counter of their union (Merge, the
// register-wise maximum). It is fed the same 64-bit hashes as HLL
// (HashAddr, Packet.SrcHash). The zero value is an empty counter.
type MiniHLL struct {
	reg [MiniRegisters]uint8
}

// AddHash counts the address whose HashAddr is x: one shift, a count of
// leading zeros and a maximum into the array, no allocation.
func (h *MiniHLL) AddHash(x uint64) {
	idx := x >> (64 - miniPrecision)
	w := x<<miniPrecision | 1<<(miniPrecision-1) // guard bit bounds the rank
	if rank := uint8(bits.LeadingZeros64(w)) + 1; rank > h.reg[idx] {
		h.reg[idx] = rank
	}
}

// Merge makes h count what o counts too (the union of their sets).
func (h *MiniHLL) Merge(o *MiniHLL) {
	for i, r := range o.reg {
		h.reg[i] = max(h.reg[i], r)
	}
}

// Empty tells whether nothing was counted.
func (h *MiniHLL) Empty() bool { return h.reg == [MiniRegisters]uint8{} }

// Reset empties the counter.
func (h *MiniHLL) Reset() { h.reg = [MiniRegisters]uint8{} }

// Estimate returns the estimated number of distinct addresses counted,
// with the standard small-range correction (linear counting while the
// raw estimate is at most 2.5 m and a register is empty).
func (h *MiniHLL) Estimate() uint64 { return hllEstimate(h.reg[:], 0.709) }

// Registers returns the registers, for a record.
func (h *MiniHLL) Registers() [MiniRegisters]uint8 { return h.reg }

// SetRegisters sets the registers from a record's b (untrusted): exactly
// MiniRegisters of them, none above the largest rank a hash can give.
func (h *MiniHLL) SetRegisters(b []byte) error {
	if len(b) != MiniRegisters {
		return errors.New("hyperloglog: want 64 registers")
	}
	for _, r := range b {
		if r > miniMaxRank {
			return errors.New("hyperloglog: a register above the largest rank")
		}
	}
	copy(h.reg[:], b)
	return nil
}

// hllEstimate is the HyperLogLog estimate of registers reg with the bias
// constant alpha of their number m: alpha m^2 / sum 2^-reg, or linear
// counting m ln(m / zeros) in the small range.
func hllEstimate(reg []uint8, alpha float64) uint64 {
	m := float64(len(reg))
	var sum float64
	zeros := 0
	for _, r := range reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := alpha * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return uint64(est + 0.5)
}
