// Package output holds icmpids's alert sinks: EVE JSON lines (EVE, EVEFile)
// in the shape of the contract, readable text lines (Text), and the Queue
// that keeps a slow or dead output from ever stalling capture, dropping and
// counting what it cannot hold. Multi fans events out to several sinks.
//
// Every sink implements detector.Sink. Sinks treat the Events they are
// given as read-only, so one Event may go to several of them. Nothing here
// reads the wall clock: events carry their own (packet) time.
package output
