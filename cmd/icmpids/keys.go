package main

import (
	"fmt"
	"sort"
	"strings"
)

// unknownKeys returns an error naming every key of settings (dotted, as
// viper's AllKeys lists the file's and the environment's) that is no
// configuration key, each with the nearest valid key when one is close:
// rules.icmp_flod: unknown key (did you mean rules.icmp_flood?). A key
// under an unknown one is not listed again; a key under a known key whose
// value is a map or a list (headers, overrides) is that key's business.
func unknownKeys(settings []string, known map[string]bool) error {
	// Every prefix of a known key is a known section.
	sections := map[string]bool{}
	children := map[string][]string{} // section ("" for the top) → its known children
	for key := range known {
		parts := strings.Split(key, ".")
		for i := range parts {
			p := strings.Join(parts[:i+1], ".")
			if !sections[p] {
				sections[p] = true
				parent := strings.Join(parts[:i], ".")
				children[parent] = append(children[parent], p)
			}
		}
	}
	seen := map[string]bool{}
	var msgs []string
	for _, key := range settings {
		parts := strings.Split(key, ".")
		for i := range parts {
			p := strings.Join(parts[:i+1], ".")
			if known[p] {
				break // a leaf (or a map- or list-valued key): what is under it is its value
			}
			if sections[p] {
				continue
			}
			if !seen[p] {
				seen[p] = true
				parent := strings.Join(parts[:i], ".")
				msg := p + ": unknown key"
				if near := nearest(p, children[parent]); near != "" {
					msg += " (did you mean " + near + "?)"
				}
				msgs = append(msgs, msg)
			}
			break
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	sort.Strings(msgs)
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// nearest returns the candidate closest to s by edit distance, if it is
// close enough to be a typo (at most a third of its length, at least 1,
// at most 3 edits); "" otherwise. Ties go to the first in sorted order.
func nearest(s string, candidates []string) string {
	best, bestD := "", 0
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		d := editDistance(s, c)
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	limit := min(max(len(lastPart(s))/3, 1), 3)
	if best == "" || bestD > limit {
		return ""
	}
	return best
}

func lastPart(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// editDistance is the Levenshtein distance of a and b, counting an
// exchange of two neighbouring characters as one edit (a typo's usual
// shape: hlod for hold).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j]: distance of ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
