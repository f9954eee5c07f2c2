package report

import "strconv"

// icmpv4Names and icmpv6Names name the ICMP types an analyst meets (IANA's
// registries, shortened); others are shown by number.
var icmpv4Names = map[uint8]string{
	0:  "echo reply",
	3:  "destination unreachable",
	4:  "source quench",
	5:  "redirect",
	8:  "echo request",
	9:  "router advertisement",
	10: "router solicitation",
	11: "time exceeded",
	12: "parameter problem",
	13: "timestamp",
	14: "timestamp reply",
	15: "information request",
	16: "information reply",
	17: "address mask request",
	18: "address mask reply",
	42: "extended echo request",
	43: "extended echo reply",
}

var icmpv6Names = map[uint8]string{
	1:   "destination unreachable",
	2:   "packet too big",
	3:   "time exceeded",
	4:   "parameter problem",
	128: "echo request",
	129: "echo reply",
	130: "MLD query",
	131: "MLD report",
	132: "MLD done",
	133: "router solicitation",
	134: "router advertisement",
	135: "neighbor solicitation",
	136: "neighbor advertisement",
	137: "redirect",
	143: "MLDv2 report",
	160: "extended echo request",
	161: "extended echo reply",
}

// TypeName names an ICMP (v6 false) or ICMPv6 type: "echo request",
// "type 77".
func TypeName(v6 bool, typ uint8) string {
	names := icmpv4Names
	if v6 {
		names = icmpv6Names
	}
	if n, ok := names[typ]; ok {
		return n
	}
	return "type " + strconv.Itoa(int(typ))
}

// familyName is the family as the summary names it.
func familyName(v6 bool) string {
	if v6 {
		return "icmpv6"
	}
	return "icmp"
}

// typeLabel is a type's label in tables and legends: "echo request" for
// ICMP, "v6 echo request" for ICMPv6.
func typeLabel(v6 bool, typ uint8) string {
	if v6 {
		return "v6 " + TypeName(true, typ)
	}
	return TypeName(false, typ)
}
