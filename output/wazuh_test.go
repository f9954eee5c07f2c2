package output

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWazuhRules: configs/wazuh/icmpids_rules.xml is well-formed, its rule
// ids are unique and in the local range, and every field it matches on or
// prints exists in the EVE alerts icmpids writes, for every phase.
func TestWazuhRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "configs", "wazuh", "icmpids_rules.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Rules []struct {
			ID     int `xml:"id,attr"`
			Level  int `xml:"level,attr"`
			Fields []struct {
				Name string `xml:"name,attr"`
			} `xml:"field"`
			Description string `xml:"description"`
		} `xml:"rule"`
	}
	if err := xml.Unmarshal(data, &g); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	if len(g.Rules) < 5 {
		t.Fatalf("%d rules", len(g.Rules))
	}
	seen := map[int]bool{}
	paths := map[string]bool{}
	for _, r := range g.Rules {
		if seen[r.ID] || r.ID < 100000 || r.ID > 120000 {
			t.Errorf("rule id %d duplicated or outside the local range", r.ID)
		}
		seen[r.ID] = true
		for _, f := range r.Fields {
			paths[f.Name] = true
		}
		for _, m := range regexp.MustCompile(`\$\(([a-z_.]+)\)`).FindAllStringSubmatch(r.Description, -1) {
			paths[m[1]] = true
		}
	}
	for _, c := range testEvents()[:3] { // start, update, end of one attack
		var ev map[string]any
		if err := json.Unmarshal(AppendEVE(nil, c.ev, &Meta{Host: "sensor-1"}), &ev); err != nil {
			t.Fatal(err)
		}
		for p := range paths {
			if p == "alert.context.attack.end_reason" && c.ev.Phase.String() != "end" {
				continue
			}
			var v any = ev
			for _, k := range strings.Split(p, ".") {
				m, _ := v.(map[string]any)
				v = m[k]
			}
			if v == nil {
				t.Errorf("%s: the rules use %s, which the %s event lacks", c.name, p, c.ev.Phase)
			}
		}
	}
}
