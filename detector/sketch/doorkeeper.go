package sketch

// Doorkeeper admits a key to a table only on its second sighting: a fixed
// array of fingerprints indexed by the key's hash (the "doorkeeper" in
// front of TinyLFU's cache). A key seen once leaves its fingerprint in
// its cell; seen again before another key overwrites that cell, it is
// admitted. A spoofed flood, every packet from a new address, thus costs
// one cell write per packet instead of an insertion into (and an eviction
// from) the exact table, and evicts none of the state the table holds.
// The price: a key's first packet is not recorded, and under such a flood
// a new key is admitted only if its packets come closer together than the
// flood takes to overwrite its cell (cells / flood rate) — the exact table
// would have evicted it sooner (its capacity is smaller still).
// A fingerprint collision admits a key early, which is what the table did
// without a doorkeeper. Fixed memory (4 bytes a cell), no allocation
// after NewDoorkeeper, deterministic.
type Doorkeeper struct {
	cells []uint32
	shift uint
	// Admitted and Rejected count the keys Seen admitted and turned away.
	Admitted, Rejected uint64
}

// NewDoorkeeper returns a doorkeeper of 2^bits cells (bits in [4, 24]).
func NewDoorkeeper(bits int) *Doorkeeper {
	bits = min(max(bits, 4), 24)
	return &Doorkeeper{cells: make([]uint32, 1<<bits), shift: uint(64 - bits)}
}

// Seen records the key whose hash is h (HashAddr, or a Mix64 of several
// hashes) and reports whether it was recorded before and its cell still
// holds it: whether to admit it. The cell's fingerprint is then cleared,
// so a key admitted (and kept by the table from now on) frees its cell.
func (d *Doorkeeper) Seen(h uint64) bool {
	c := &d.cells[h>>d.shift]
	fp := uint32(h) | 1 // never 0: an empty cell matches no key
	if *c == fp {
		*c = 0
		d.Admitted++
		return true
	}
	*c = fp
	d.Rejected++
	return false
}

// Cells is the number of cells (what a flood overwrites before a key's
// fingerprint is gone).
func (d *Doorkeeper) Cells() int { return len(d.cells) }
