package detector

// Interest says which packets a rule observes (and, for a Classifier,
// classifies), so the engine hands each packet only to the rules that
// look at it: an echo request never costs the neighbor-discovery rules a
// call, nor a Router Advertisement the echo rules.
type Interest struct {
	// ICMPv4 and ICMPv6 hold, one bit per ICMP type, the messages (with
	// a decoded ICMP header, fragmented or not) the rule observes.
	ICMPv4, ICMPv6 TypeSet
	// Fragments: every IP fragment, of any protocol, with or without an
	// ICMP header.
	Fragments bool
}

// TypeSet is a set of ICMP types.
type TypeSet [4]uint64

// Types returns the set of the given ICMP types.
func Types(types ...uint8) TypeSet {
	var s TypeSet
	for _, t := range types {
		s[t/64] |= 1 << (t % 64)
	}
	return s
}

// AllTypes is every ICMP type.
var AllTypes = TypeSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}

// Has tells whether t is in s.
func (s TypeSet) Has(t uint8) bool { return s[t/64]&(1<<(t%64)) != 0 }

// Interested is implemented by rules that observe only some packets. A
// rule without it observes every packet the engine hands to rules (every
// ICMP/ICMPv6 packet and every fragment).
type Interested interface {
	Interest() Interest
}

// interestOf returns r's interest, everything for a rule without one.
func interestOf(r Rule) Interest {
	if i, ok := r.(Interested); ok {
		return i.Interest()
	}
	return Interest{ICMPv4: AllTypes, ICMPv6: AllTypes, Fragments: true}
}

// dispatch holds, per kind of packet, the indices of the rules that see
// it, in rule order, and the classifiers among them.
type dispatch struct {
	// byType[v6][type]: an unfragmented message of that type;
	// fragType[v6][type]: a fragment carrying that ICMP header;
	// fragOther: any other fragment.
	byType, fragType [2][256][]int
	fragOther        []int
	classByType      [2][256][]Classifier
	classFragType    [2][256][]Classifier
	classFragOther   []Classifier
}

func newDispatch(rules []Rule) *dispatch {
	d := &dispatch{}
	for i, r := range rules {
		in := interestOf(r)
		c, isClass := r.(Classifier)
		for v6 := 0; v6 < 2; v6++ {
			set := in.ICMPv4
			if v6 == 1 {
				set = in.ICMPv6
			}
			for t := 0; t < 256; t++ {
				typed := set.Has(uint8(t))
				if typed {
					d.byType[v6][t] = append(d.byType[v6][t], i)
				}
				if typed || in.Fragments {
					d.fragType[v6][t] = append(d.fragType[v6][t], i)
				}
				if isClass && typed {
					d.classByType[v6][t] = append(d.classByType[v6][t], c)
				}
				if isClass && (typed || in.Fragments) {
					d.classFragType[v6][t] = append(d.classFragType[v6][t], c)
				}
			}
		}
		if in.Fragments {
			d.fragOther = append(d.fragOther, i)
			if isClass {
				d.classFragOther = append(d.classFragOther, c)
			}
		}
	}
	return d
}

// of returns the rules and the classifiers that see p.
func (d *dispatch) of(p *Packet) ([]int, []Classifier) {
	v6 := 0
	if p.IPv6 {
		v6 = 1
	}
	switch {
	case p.Fragment && p.HasICMP:
		return d.fragType[v6][p.ICMPType], d.classFragType[v6][p.ICMPType]
	case p.Fragment:
		return d.fragOther, d.classFragOther
	case p.HasICMP:
		return d.byType[v6][p.ICMPType], d.classByType[v6][p.ICMPType]
	}
	return nil, nil
}
