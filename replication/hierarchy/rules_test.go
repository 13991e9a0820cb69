package hierarchy

import (
	"testing"
)

// TestLoadRulesVerifyPercent: a stored verify_percent of 0 reads back as 0 (the sampled check
// off), an absent one as the default 5.
func TestLoadRulesVerifyPercent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stored any
		want   float64
	}{
		{"none stored", nil, 5},
		{"absent", map[string]any{"catalog": "continuous"}, 5},
		{"zero", map[string]any{"verify_percent": 0}, 0},
		{"set", map[string]any{"verify_percent": 12.5}, 12.5},
		{"full rules with zero", Rules{Catalog: "01:00", Languages: "20:00", Policies: "continuous", Settings: "continuous"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := newMemSite(t)
			if tc.stored != nil {
				if _, err := site.PutSetting(SettingRules, tc.stored); err != nil {
					t.Fatal(err)
				}
			}
			r := LoadRules(site.s)
			if r.VerifyPercent != tc.want {
				t.Fatalf("verify_percent %v, want %v", r.VerifyPercent, tc.want)
			}
			if r.Languages != "20:00" {
				t.Fatalf("languages %q, want the default", r.Languages)
			}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
