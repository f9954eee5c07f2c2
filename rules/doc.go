// Package rules holds icmpids's detection rules, one file per rule. Each
// rule has a Config with defaults (Default*Config) and Validate, keeps its
// state in bounded tables, reads only packet time, and reports evidence to
// the engine through detector.Reporter; the engine owns the alert lifecycle.
package rules
