package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRoffEscape: text that roff would take for requests or escapes stays
// text.
func TestRoffEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain -- text", "plain -- text"},
		{`a\b`, `a\eb`},
		{".PP at the start\n'quote start\nmid . and ' stay", "\\&.PP at the start\n\\&'quote start\nmid . and ' stay"},
	} {
		if got := roffEscape(tc.in); got != tc.want {
			t.Errorf("roffEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestNoMarkdownConverterLinked: icmpids writes its manual pages itself;
// cobra/doc's markdown converter (go-md2man, blackfriday) is not linked,
// since blackfriday's package initialisation ran at every start (~9 M
// instructions, a quarter of a 1-packet replay's).
func TestNoMarkdownConverterLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "blackfriday") || strings.Contains(pkg, "go-md2man") || strings.HasSuffix(pkg, "cobra/doc") {
			t.Errorf("icmpids links %s", pkg)
		}
	}
}
