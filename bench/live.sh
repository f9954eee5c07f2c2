#!/usr/bin/env bash
# bench/live.sh — the highest packet rate at which `icmpids run` (live
# capture with libpcap or AF_PACKET, every rule on) shows zero kernel drops,
# for each capture method asked for.
#
# Creates two network namespaces joined by a veth pair (nothing outside
# them is touched), sends a spoofed-source echo flood from one end at
# increasing rates — with trafgen (Debian's netsniff-ng: a PACKET_MMAP TX
# ring, every packet a new random source) or tcpreplay (a generated
# capture) — captures on the other end with icmpids, and reads icmpids'
# exit statistics (received, kernel_dropped). Each step sends a bounded
# number of packets (rate x SECONDS, at most MAX_PACKETS) under a timeout;
# the script stops at the first rate with drops, and cleans up on exit.
# Needs root, iproute2 and trafgen or tcpreplay.
#
# Settings (environment):
#   SENDER=trafgen      or tcpreplay (default: trafgen when installed)
#   RATES="50000 100000 200000 400000 max"   pps steps; "max" runs SENDERS
#                       senders at full speed at once (trafgen: SENDERS TX
#                       ring processes; tcpreplay: --topspeed)
#   SENDERS=2  SECONDS_PER_STEP=3  MAX_PACKETS=2000000
#   WORKERS=0           --workers (0: one per CPU, icmpids's default)
#   METHOD="pcap afpacket"  capture methods to measure, one after the other
#                       (--capture-method); "fastnetmon" adds Debian's
#                       FastNetMon (AF_PACKET mirror mode, its own default
#                       thresholds) in the same rig as the reference: its
#                       received count is its Prometheus counter of IPv4
#                       packets, its alerts the attacks it reported
#   FANOUT=1            AF_PACKET sockets read in parallel (--fanout; afpacket
#                       only, 0 = one per CPU)
#   EXTRA_FLAGS=""      more icmpids run flags (e.g. --buffer-size 67108864)
#   SCENARIO=           an icmpids-gen scenario to send instead of the
#                       spoofed flood (e.g. a crafted flood of bench/worst.sh:
#                       SCENARIO=ra-options): trafgen cycles through its first
#                       FLOOD_FRAMES=2000 frames (converted by netsniff-ng);
#                       tcpreplay sends the scenario. The veth's MTU is 9000,
#                       so crafted frames above 1,500 bytes pass.
set -euo pipefail

RATES=${RATES:-"50000 100000 200000 400000 max"}
SENDERS=${SENDERS:-2}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-3}
MAX_PACKETS=${MAX_PACKETS:-2000000}
WORKERS=${WORKERS:-0}
METHOD=${METHOD:-"pcap afpacket"}
FANOUT=${FANOUT:-1}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
SCENARIO=${SCENARIO:-}
FLOOD_FRAMES=${FLOOD_FRAMES:-2000}

if [[ -z ${SENDER:-} ]]; then
	SENDER=tcpreplay
	command -v trafgen >/dev/null && SENDER=trafgen
fi
case $SENDER in
trafgen | tcpreplay) ;;
*) echo "live.sh: SENDER must be trafgen or tcpreplay, not $SENDER" >&2; exit 2 ;;
esac
for c in ip $SENDER; do command -v $c >/dev/null || { echo "live.sh needs $c (SENDER=$SENDER)" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "live.sh needs root (network namespaces)" >&2; exit 2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/icmpids-live.XXXXXX)
nsA=icmpids-live-a-$$ nsB=icmpids-live-b-$$
sensor_pid=
cleanup() {
	[[ -n $sensor_pid ]] && kill "$sensor_pid" 2>/dev/null && wait "$sensor_pid" 2>/dev/null
	ip netns del "$nsA" 2>/dev/null || true
	ip netns del "$nsB" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && go build -o "$work/icmpids" ./cmd/icmpids && go build -o "$work/icmpids-gen" ./cmd/icmpids-gen)
ip netns add "$nsA"
ip netns add "$nsB"
ip link add veth0 netns "$nsA" type veth peer name veth1 netns "$nsB"
ip -n "$nsA" link set veth0 mtu 9000 up
ip -n "$nsB" link set veth1 mtu 9000 up
ip -n "$nsA" link set lo up
ip -n "$nsB" link set lo up
# trafgen's flood: to the sensor's MAC, a random source per packet.
mac=$(ip netns exec "$nsB" cat /sys/class/net/veth1/address)
echo "{ eth(da=$mac), ipv4(sa=drnd(), da=10.250.0.2, ttl=64), icmp4(echorequest, id=drnd(), seq=dinc()), fill(0x41, 56) }" >"$work/flood.trafgen"
if [[ -n $SCENARIO && $SENDER == trafgen ]]; then
	# The scenario's frames as trafgen's packets (it sends them in turn).
	command -v netsniff-ng >/dev/null || { echo "live.sh: SCENARIO with trafgen needs netsniff-ng" >&2; exit 2; }
	"$work/icmpids-gen" -scenario "$SCENARIO" -count "$FLOOD_FRAMES" -rate 1000000 -seed 7 -o "$work/scenario.pcap"
	netsniff-ng --in "$work/scenario.pcap" --out "$work/flood.trafgen" -q >/dev/null 2>&1
fi

# send_trafgen COUNT [RATE]: sends COUNT packets (at RATE pps, or at full
# speed with SENDERS processes); prints "sent sent_pps".
send_trafgen() {
	local count=$1 rate=${2:-} t0 t1 out
	t0=$(date +%s.%N)
	if [[ -n $rate ]]; then
		out=$(timeout $((SECONDS_PER_STEP * 4 + 20)) ip netns exec "$nsA" trafgen -o veth0 -P 1 -n "$count" -b "${rate}pps" -c "$work/flood.trafgen" 2>&1 || true)
	else
		out=$(timeout 60 ip netns exec "$nsA" trafgen -o veth0 -P "$SENDERS" -n "$count" -c "$work/flood.trafgen" 2>&1 || true)
	fi
	t1=$(date +%s.%N)
	tr -d '\r' <<<"$out" | awk -v t0="$t0" -v t1="$t1" '/packets outgoing/ {s += $1} END {printf "%d %.0f\n", s, s / (t1 - t0)}'
}

# measure METHOD: one pass over RATES; prints a table and the best rate.
# start_fastnetmon: FastNetMon on veth1, its files in $work/fnm, its
# Prometheus endpoint on the namespace's loopback.
start_fastnetmon() {
	mkdir -p "$work/fnm"
	echo 10.250.0.0/24 >"$work/fnm/networks"
	: >"$work/fnm/whitelist"
	: >"$work/fnm/notify.log"
	printf '#!/bin/sh\necho "$@" >>%s\n' "$work/fnm/notify.log" >"$work/fnm/notify.sh"
	chmod +x "$work/fnm/notify.sh"
	sed -e 's|^interfaces = .*|interfaces = veth1|; s|^mirror_afpacket = .*|mirror_afpacket = on|' \
		-e "s|^networks_list_path = .*|networks_list_path = $work/fnm/networks|; s|^white_list_path = .*|white_list_path = $work/fnm/whitelist|" \
		-e "s|^cli_stats_file_path = .*|cli_stats_file_path = $work/fnm/stats|; s|^cli_stats_ipv6_file_path = .*|cli_stats_ipv6_file_path = $work/fnm/stats6|" \
		-e "s|^notify_script_path = .*|notify_script_path = $work/fnm/notify.sh|; s|^enable_api = .*|enable_api = off|; s|^disable_usage_report = .*|disable_usage_report = on|" \
		/etc/fastnetmon.conf >"$work/fnm/fastnetmon.conf"
	ip netns exec "$nsB" timeout 300 fastnetmon --configuration_file "$work/fnm/fastnetmon.conf" \
		--log_file "$work/fnm/fastnetmon.log" --disable_pid_logic >/dev/null 2>&1 &
	sensor_pid=$!
	for _ in $(seq 50); do # wait until it captures
		grep -q "AF_PACKET will listen on veth1" "$work/fnm/fastnetmon.log" 2>/dev/null && break
		sleep 0.1
	done
	sleep 1
}

# fastnetmon_received: the IPv4 packets FastNetMon has processed.
fastnetmon_received() {
	ip netns exec "$nsB" curl -s --max-time 5 http://127.0.0.1:9209/metrics |
		awk '$1 == "fastnetmon_total_ipv4_packets" {print $2}'
}

measure() {
local method=$1 flags="--capture-method $1"
[[ $1 == afpacket ]] && flags+=" --fanout $FANOUT"
if [[ $method == fastnetmon ]]; then
	for c in fastnetmon curl; do command -v $c >/dev/null || { echo "live.sh: METHOD fastnetmon needs $c" >&2; return; }; done
fi
echo "== $method (workers $WORKERS, afpacket fanout $FANOUT, sender $SENDER, ${SCENARIO:-spoofed-flood})"
printf '%10s %10s %12s %10s %14s %6s\n' target_pps sent sent_pps received kernel_dropped alerts
best=0
for rate in $RATES; do
	if [[ $rate == max ]]; then
		count=$((MAX_PACKETS / SENDERS))
	else
		count=$((rate * SECONDS_PER_STEP))
		((count > MAX_PACKETS)) && count=$MAX_PACKETS
	fi
	if [[ $SENDER == tcpreplay ]]; then
		"$work/icmpids-gen" -scenario "${SCENARIO:-spoofed-flood}" -count "$count" -rate "${rate/max/1000000}" -seed 7 -o "$work/flood.pcap"
	fi
	rm -f "$work/eve.json"
	if [[ $method == fastnetmon ]]; then
		start_fastnetmon
	else
		ip netns exec "$nsB" "$work/icmpids" run -i veth1 --workers "$WORKERS" --format none --eve "$work/eve.json" \
			--stats-interval 0 $flags $EXTRA_FLAGS 2>"$work/sensor.log" &
		sensor_pid=$!
		for _ in $(seq 50); do # wait until it captures
			grep -q capturing "$work/sensor.log" 2>/dev/null && break
			sleep 0.1
		done
		sleep 0.3
	fi
	if [[ $SENDER == trafgen ]]; then
		if [[ $rate == max ]]; then
			read -r sent spps < <(send_trafgen "$MAX_PACKETS")
		else
			read -r sent spps < <(send_trafgen "$count" "$rate")
		fi
	elif [[ $rate == max ]]; then
		for i in $(seq "$SENDERS"); do
			timeout 60 ip netns exec "$nsA" tcpreplay -q -t -i veth0 "$work/flood.pcap" >"$work/sender.$i" 2>&1 &
		done
		wait $(jobs -p | grep -v "^$sensor_pid$") 2>/dev/null || true
		out=$(cat "$work"/sender.*)
	else
		out=$(timeout $((SECONDS_PER_STEP * 4 + 20)) ip netns exec "$nsA" tcpreplay -q -i veth0 --pps="$rate" "$work/flood.pcap" 2>&1 || true)
	fi
	sleep 1 # let the sensor drain its buffer
	if [[ $method == fastnetmon ]]; then
		sleep 5 # FastNetMon decides on its averages (average_calculation_time 5 s)
		recv=$(fastnetmon_received)
		drop=n/a
		alerts=$(grep -c ' ban$' "$work/fnm/notify.log" || true)
	fi
	kill -INT "$sensor_pid"
	wait "$sensor_pid" 2>/dev/null || true # (FastNetMon 1.2.4 may crash on its way out)
	sensor_pid=
	if [[ $method != fastnetmon ]]; then
		stats=$(grep 'capture statistics at exit' "$work/sensor.log" | tail -1)
		recv=$(grep -o 'received=[0-9]*' <<<"$stats" | cut -d= -f2)
		drop=$(grep -o 'kernel_dropped=[0-9]*' <<<"$stats" | cut -d= -f2)
		alerts=$(grep -c '"event_type":"alert"' "$work/eve.json" 2>/dev/null || true)
	fi
	if [[ $SENDER == tcpreplay ]]; then
		sent=$(grep -o 'Actual: [0-9]* packets' <<<"$out" | awk '{s += $2} END {print s}')
		spps=$(grep -o 'Rated: [0-9.]* Bps, [0-9.]* Mbps, [0-9.]* pps' <<<"$out" | awk '{s += $(NF-1)} END {printf "%.0f", s}')
	fi
	printf '%10s %10s %12s %10s %14s %6s\n' "$rate" "${sent:-?}" "${spps:-?}" "${recv:-?}" "${drop:-?}" "${alerts:-0}"
	if [[ -z ${drop:-} || (${drop} != 0 && ${drop} != n/a) || ${recv:-0} -lt ${sent:-0} ]]; then
		break
	fi
	best=$spps
done
echo "$method: highest drop-free rate: $best pps (what $SENDER achieved at the last step without kernel drops)"
results+=("$method: $best pps")
}

results=()
for m in $METHOD; do
	measure "$m"
done
echo "== summary (workers $WORKERS, afpacket fanout $FANOUT)"
printf '%s\n' "${results[@]}"
