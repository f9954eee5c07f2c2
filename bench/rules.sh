#!/usr/bin/env bash
# bench/rules.sh — what each rule costs, in ns per packet, on the two
# captures of bench/compare.sh (the realistic mix and the spoofed-source
# echo flood): builds bench/rulecost, generates the captures (or reuses
# them from WORKDIR) and runs it. A rule's cost is what turning it off
# saves, measured in memory through one engine (see bench/rulecost).
#
# Settings (environment): RUNS=5, and those of bench/common.sh (MIX_COUNT,
# FLOOD_COUNT, ..., WORKDIR, SEED). Needs ~1 GB of memory for the default
# captures (they are held in it) and about a minute.
# Usage: bench/rules.sh            (from anywhere inside the repository)
set -euo pipefail

RUNS=${RUNS:-5}
. "$(dirname "$0")/common.sh"

workdir rules
build bench/rulecost cmd/icmpids-gen
captures
"$work/rulecost" -runs "$RUNS" "$work/mix.pcap" "$work/flood.pcap"
