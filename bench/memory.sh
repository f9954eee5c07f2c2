#!/usr/bin/env bash
# bench/memory.sh — peak RSS of icmpids replay under the two memory attacks
# of issue 6, measured with /usr/bin/time -v (GNU time):
#   1. FLOOD_COUNT (10,000,000) echo requests to one victim, each from a new
#      spoofed source;
#   2. FRAG_COUNT (1,000,000) fragment trains that never complete (first
#      fragments only, each a new spoofed source and IP id).
# Every rule is on, EVE goes to a file. For each it prints the peak RSS, the
# goal (<= 128 MiB), whether the attack was reported with an estimated
# source count, and the evictions icmpids counted.
#
# Settings (environment): FLOOD_COUNT, FRAG_COUNT, WORKERS (default 0,
# icmpids's default: one engine per CPU),
# WORKDIR (default: a temp dir in tmpfs, removed at the end; captures cached
# there are reused when made with the same settings), LIMIT_MIB (128).
set -euo pipefail

FLOOD_COUNT=${FLOOD_COUNT:-10000000}
FRAG_COUNT=${FRAG_COUNT:-1000000}
WORKERS=${WORKERS:-0}
LIMIT_MIB=${LIMIT_MIB:-128}
[[ -x /usr/bin/time ]] || { echo "memory.sh needs GNU time (apt-get install time)" >&2; exit 2; }
command -v jq >/dev/null || { echo "memory.sh needs jq" >&2; exit 2; }

. "$(dirname "$0")/common.sh"

workdir memory
build cmd/icmpids cmd/icmpids-gen
gen flood spoofed-flood "$FLOOD_COUNT" 1000000
gen frags frag-flood "$FRAG_COUNT" 200000

fail=0
printf '%-12s %10s %9s %8s %6s  %s\n' attack packets rss_mib seconds ok report
for name in flood frags; do
	rm -f "$work/$name.eve"
	/usr/bin/time -v "$work/icmpids" replay --workers "$WORKERS" --format none --eve "$work/$name.eve" "$work/$name.pcap" 2>"$work/$name.err" ||
		{ cat "$work/$name.err" >&2; exit 1; }
	kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/$name.err")
	secs=$(awk '/Elapsed \(wall clock\)/ {n = split($NF, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s}' "$work/$name.err")
	# (|| true: a run without evictions prints its row, marked NO, instead
	# of ending the script there under pipefail)
	frames=$(grep -o 'frames=[0-9]*' "$work/$name.err" | tail -1 | cut -d= -f2 || true)
	evicted=$(grep -o ' evicted=[0-9]*' "$work/$name.err" | tail -1 | cut -d= -f2 || true)
	report=$(jq -r 'select(.alert.context.attack.phase == "end") |
		"\(.alert.context.attack.rule) on \(.alert.context.attack.target): \(.alert.context.attack.packets) packets, sources \(.alert.context.attack.sources) (estimated: \(.alert.context.attack.sources_estimated // false))"' "$work/$name.eve" | head -1)
	mib=$((kib / 1024))
	ok=yes
	if ((mib > LIMIT_MIB)) || [[ -z $report ]] || [[ -z ${evicted:-} ]]; then ok=NO; fail=1; fi
	printf '%-12s %10s %9s %8s %6s  %s; evictions counted: %s\n' "$name" "$frames" "$mib" "$secs" "$ok" "${report:-no attack reported}" "${evicted:-none}"
done
echo "# peak RSS by /usr/bin/time -v; goal <= $LIMIT_MIB MiB with the attack reported and evictions counted; workers $WORKERS" >&2
exit $fail
