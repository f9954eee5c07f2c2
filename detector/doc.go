// Package detector is icmpids's detection engine: it decodes raw frames into
// a small Packet value without allocating, keeps the clock in packet time,
// hands each packet to the rules, and turns what the rules report into attack
// events (start, update, end) for the output sinks.
//
// The engine is single-threaded by design: one Engine per packet stream, no
// locks on the hot path. Scaling across cores means several engines, each
// owning a disjoint shard of targets.
package detector
