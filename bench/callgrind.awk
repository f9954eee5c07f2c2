# bench/callgrind.awk — one callgrind run of bench/rulecost -measure,
# summed by rule (used by bench/instr.sh).
#
#	awk -f bench/callgrind.awk RULES CALLGRIND.OUT
#
# RULES is rulecost's output (lines "rule NAME TYPE"); CALLGRIND.OUT the
# run's callgrind file. Prints "LABEL INSTRUCTIONS" lines: engine (every
# instruction of the run), base (the engine less the rules and the ND
# walk), nd_options (the inclusive cost of every call to
# Packet.NDOptions: the packet's one ND option walk, paid by the first
# rule to ask), then each rule: the inclusive cost of the engine's calls
# (callers in package detector) into the rule's entry points, less the
# calls to Packet.NDOptions made under them (the run must separate
# NDOptions by its callers: --separate-callers5='*Packet).NDOptions'). A call's inclusive cost is the cost line
# after its "calls=" line; function names are compressed as "(id) name"
# the first time, "(id)" after.
FNR == NR {
	if ($1 == "rule") { nr++; rname[nr] = $2; rtype[nr] = $3 "." }
	next
}
function name(s,    id, rest) {
	id = s; sub(/\).*/, "", id); sub(/^\(/, "", id)
	rest = s; sub(/^\([0-9]+\) ?/, "", rest)
	if (rest != "") names[id] = rest
	return names[id]
}
/^summary:/ { total = $2 }
/^fn=/ { fn = name(substr($0, 4)); next }
/^cfn=/ { cfn = name(substr($0, 5)); next }
/^calls=/ { incall = 1; next }
incall { call[fn SUBSEP cfn] += $2; incall = 0; next }
END {
	entry = "^(Observe|Classify|Tick|Shadow|ObserveSource|ObserveAnomaly|ObserveLink|Flush|Warm|FleetReport|JudgeFleet)$"
	ndo = "github.com/icmpids/icmpids/detector.(*Packet).NDOptions"
	for (k in call) {
		split(k, p, SUBSEP)
		caller = p[1]; callee = p[2]
		if (index(callee, ndo) == 1) {
			# the walk, in the context of its callers (callgrind's
			# --separate-callers: "NDOptions'caller'caller's caller'..."):
			# the first rule among them asked for it
			nd += call[k]
			nc = split(callee, chain, "'")
			for (j = 2; j <= nc && !(k in ndof); j++)
				for (i = 1; i <= nr; i++)
					if (index(chain[j], rtype[i]) == 1) { cost[i] -= call[k]; ndof[k] = i; break }
			continue
		}
		if (caller !~ /^github\.com\/icmpids\/icmpids\/detector\.[^\/]*$/) continue
		for (i = 1; i <= nr; i++) {
			t = rtype[i]
			if (index(callee, t) == 1 && substr(callee, length(t) + 1) ~ entry) cost[i] += call[k]
		}
	}
	rules = 0
	for (i = 1; i <= nr; i++) rules += cost[i]
	print "engine", total
	print "base", total - rules - nd
	print "nd_options", nd
	for (i = 1; i <= nr; i++) print rname[i], cost[i] + 0
}
