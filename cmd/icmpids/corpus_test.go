package main

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/icmpids/icmpids/capture/corpus"
)

// corpusDir is the shared corpus of real public captures, beside the repo.
func corpusDir(t *testing.T) string { return corpus.Dir(t) }

// corpusCase is what one corpus file must raise: want lists "rule target"
// pairs that must each start exactly once (or "rule target xN": N times,
// for one-shot rules that alert once per fragment train); anything else is
// a false alert.
type corpusCase struct {
	file string
	want []string
	// accept lists "rule target" pairs the summary accepts but does not
	// require ("X acceptable"): they may start, at most once.
	accept []string
}

// corpusCases follows ../shared/corpus/PROVENANCE.md, "Summary" and
// "Decisions".
var corpusCases = []corpusCase{
	{file: "flood/ipv6_echo_flood_denial6-5_thc.pcap", want: []string{"icmp_flood 2001:db8:1::1"}},
	// Each MLD report sits alone in a fragment that never completes: an
	// MLD flood and a flood of incomplete fragment trains at once.
	{file: "flood/ipv6_mld_report_frag_flood_denial6-6_thc.pcap", want: []string{"icmp_flood 2001:db8:1::1", "frag_flood 2001:db8:1::1"}},
	{file: "pod/ipv4_ping_of_death_66028B_mmt.pcap", want: []string{"ping_of_death 192.168.0.55"}},
	{file: "pod/ipv6_oversize_echo_65543B_frag-15_thc.pcap", want: []string{"ping_of_death 2001:db8:1::1"}},
	{file: "pod/ipv6_oversize_echo_65536B_frag-31_thc.pcap", want: []string{"ping_of_death 2001:db8:1::1"}},
	{file: "pod/ipv6_oversize_echo_66928B_frag-16_thc.pcap", want: []string{"ping_of_death 2001:db8:1::1"}},
	{file: "smurf/ipv6_rsmurf6_ff02-1_thc.pcap", want: []string{"smurf ff02::1"}},
	{file: "frag/ipv4_teardrop_wireshark.pcap", want: []string{"frag_overlap 129.111.30.27"}},
	{file: "frag/ipv4_nestea_mmt.pcap", want: []string{"frag_overlap 192.168.0.194"}},
	// Its two first fragments are byte-identical: a duplicate, not a
	// conflict (PROVENANCE's per-file note: nothing).
	{file: "frag/ipv4_udp_overlap_zeek-fragmented-2.pcap"},
	{file: "frag/ipv4_udp_inconsistent_zeek-fragmented-1.pcap", want: []string{"frag_overlap 164.1.123.61"}},
	// Four complete trains of 313 16-byte TCP fragments: each first
	// fragment holds 16 of TCP's 20 header bytes (RFC 1858 tiny fragments).
	{file: "frag/ipv4_tcp_fragment_garbage_ndpi.pcap", want: []string{"frag_tiny 10.128.0.2 x4"}},
	{file: "frag/ipv6_echo_overlap_frag-1_thc.pcap", want: []string{"frag_overlap 2001:db8:1::1"}},
	{file: "misc/fuzz_frag_offset_65480_tcpdump.pcap", want: []string{"frag_oversize 0.172.128.5"}},
	{file: "benign/ping_5_zeek.pcap"},
	{file: "benign/ping_4_sanders.pcapng"},
	{file: "benign/ping_75_continuous_suricata.pcap"},
	{file: "benign/ping_fragmented_large_ppa.pcap"},
	{file: "benign/ping_fragmented_sanders.pcapng"},
	{file: "benign/traceroute_windows_sanders.pcapng"},
	{file: "benign/traceroute_slow_ppa.pcap"},
	{file: "benign/dest_unreach_host_ppa.pcap"},
	{file: "benign/dest_unreach_port_udp_zeek.pcap"},
	{file: "benign/time_exceeded_zeek.pcap"},
	{file: "benign/frag_needed_pmtud_smtp_suricata.pcap"},
	{file: "benign/nmap_icmp_probes_osfp_ppa.pcap"},
	// Its one source quench (RFC 6633: deprecated, hosts ignore it) quotes
	// hping3's default header 1.2.3.4 → 5.6.7.8, a packet 10.0.0.138
	// never sent.
	{file: "benign/all_icmp_types_pcapplusplus.pcapng", want: []string{"icmp_error_abuse 10.0.0.138"}},
	{file: "icmpv6/nd_ra_ns_na_mld_options_zeek.pcap"},
	{file: "icmpv6/router_advert_zeek.pcap"},
	{file: "icmpv6/neighbor_solicitation_sanders.pcapng"},
	{file: "icmpv6/ping6_zeek.pcap"},
	{file: "icmpv6/ping6_fragmented_sanders.pcapng"},
	// A Packet Too Big (MTU 1280) about a 52-byte packet: it fit.
	{file: "icmpv6/packet_too_big_zeek.pcap", want: []string{"icmp_error_abuse fe80::beef"}},
	{file: "icmpv6/redirect_zeek.pcap", accept: []string{"icmp_redirect fe80::beef"}},
	{file: "icmpv6/mixed_icmp6_communityid_zeek.pcap"},
	// MTU 1200 < 1280 (RFC 8021's atomic-fragment attack).
	{file: "icmpv6/ptb_mtu1200_atomic_frag_thc.pcap", want: []string{"icmp_error_abuse fe80::6600:6aff:fe5b:8f4a"}},
	// RAs with router lifetime 0 in the name of fe80::6600:6aff:fe5b:8eb3
	// (an EUI-64 address of 64:00:6a:5b:8e:b3) from 00:50:b6:19:e6:50.
	{file: "icmpv6/kill_router6_ra_lifetime0_thc.pcap", want: []string{"rogue_ra ff02::1"}},
	// icmptunnel: IP packets in echo data (id 65279, seq 0), replies
	// carrying other data than their requests.
	{file: "tunnel/ssh_over_icmp_ndpi.pcap", want: []string{"icmp_tunnel 192.168.154.131"}},
	{file: "tunnel/covert_chat_in_echo_ppa.pcap"},
	{file: "tunnel/ipv6_covert_dstopts_echo_thc.pcap"},
	// Six redirects naming gateway 0.0.0.0 (bad_gateway). Target: the
	// host the redirects are sent to, which the contract calls the host
	// being redirected. The summary row says 5.6.7.8, the redirected
	// destination (from the quoted header 1.2.3.4 → 5.6.7.8), reading the
	// frames as sent from 217.70.184.38; they are sent from
	// 192.168.227.137 to 217.70.184.38 (tcpdump: "192.168.227.137 >
	// 217.70.184.38: ICMP redirect 5.6.7.8 to host 0.0.0.0"). The alert
	// carries 5.6.7.8 as redirected_destination.
	{file: "misc/icmp_redirect_x6_mmt.pcap", want: []string{"icmp_redirect 217.70.184.38"}},
	// Anonymized: the errors' destination was rewritten to 10.10.10.10,
	// their quotes still name 136.243.174.154 (quote_mismatch).
	{file: "misc/udp_snmp_reflection_with_icmp_errors_stopddos.pcap", accept: []string{"icmp_error_abuse 10.10.10.10"}},
	{file: "misc/udp_dns_rrsig_amp_fragmented_stopddos.pcap"},
	{file: "misc/ping_sweep_10.0.0.0_24_incl_bcast_sgr.pcap", want: []string{"icmp_sweep 10.0.0.128"}},
	{file: "misc/broadcast_ping_255.255.255.255_vlan_suricata.pcap"},
	{file: "misc/icmp_truncated_snaplen_zeek.pcap"},
	{file: "misc/icmp_malformed_ndpi.pcap"},
	{file: "misc/icmp_invalid_types_x48_suricata.pcap"},
	{file: "misc/icmp_extended_echo_rfc8335_tcpdump.pcap"},
}

// TestCorpus replays every file of the shared corpus through the command
// line and checks what it raises: the expected attacks exactly once each,
// and nothing else.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	listed := map[string]bool{}
	for _, tc := range corpusCases {
		listed[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			code, out, stderr := icmpids(t, "replay", "--format", "eve", filepath.Join(dir, tc.file))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			evs := parseEVE(t, out)
			starts := map[string]int{}
			ends := map[string]int{}
			for _, e := range evs {
				a := e.Alert.Context.Attack
				key := a.Rule + " " + a.Target
				switch a.Phase {
				case "start":
					starts[key]++
				case "end":
					ends[key]++
				}
			}
			wanted := map[string]bool{}
			for _, w := range tc.accept {
				wanted[w] = true
				if starts[w] > 1 {
					t.Errorf("%q (accepted) started %d times, want at most 1", w, starts[w])
				}
			}
			for _, w := range tc.want {
				n := 1
				if i := strings.LastIndex(w, " x"); i > 0 {
					n, _ = strconv.Atoi(w[i+2:])
					w = w[:i]
				}
				wanted[w] = true
				if starts[w] != n {
					t.Errorf("%q started %d times, want %d (events: %v)", w, starts[w], n, summary(evs))
				}
			}
			var unexpected []string
			for k := range starts {
				if !wanted[k] {
					unexpected = append(unexpected, k)
				}
			}
			sort.Strings(unexpected)
			if len(unexpected) > 0 {
				t.Errorf("false alerts: %v", unexpected)
			}
			for k, n := range starts {
				if oneShot(k) {
					continue
				}
				if ends[k] != n {
					t.Errorf("%q: %d start(s) but %d end(s)", k, n, ends[k])
				}
			}
		})
	}
	// Every capture in the corpus is covered by a case.
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if !listed[filepath.ToSlash(rel)] {
			t.Errorf("corpus file %s has no expectation in corpusCases", rel)
		}
		return nil
	})
}

// oneShot tells whether the rule in "rule target" emits start only.
func oneShot(key string) bool {
	rule, _, _ := strings.Cut(key, " ")
	switch rule {
	case "ping_of_death", "frag_oversize", "frag_overlap", "frag_tiny":
		return true
	}
	return false
}

// TestCorpusWorkers replays every file of the shared corpus, the demo
// capture and the all-rules capture with 1, 2, 3, 6, 8 and 16 workers
// (16 twice): the EVE output must be the same, byte for byte — same
// events, same order, same figures — whatever the shards, whichever
// engine the dispatcher runs itself and whichever engine is the link's.
func TestCorpusWorkers(t *testing.T) {
	dir := corpusDir(t)
	files := []string{filepath.Join("testdata", "demo.pcap"), allRulesCapture(t)}
	for _, tc := range corpusCases {
		files = append(files, filepath.Join(dir, tc.file))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			var want string
			for _, w := range []string{"1", "2", "3", "6", "8", "16", "16"} {
				code, out, stderr := icmpids(t, "replay", "--format", "eve", "--workers", w, file)
				if code != 0 {
					t.Fatalf("--workers %s: exit %d: %s", w, code, stderr)
				}
				if w == "1" {
					want = out
					continue
				}
				if out != want {
					t.Errorf("--workers %s printed\n%s\none worker printed\n%s", w, out, want)
				}
			}
		})
	}
}
