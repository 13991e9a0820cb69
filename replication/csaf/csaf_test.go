package csaf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseMapping(t *testing.T) {
	long := strings.Repeat("Upgrade the controller firmware to the fixed release ", 6)
	tests := []struct {
		name  string
		mod   func(d obj)
		check func(t *testing.T, a *Advisory)
	}{
		{"base document", nil, func(t *testing.T, a *Advisory) {
			b := a.Bulletin
			want := []string{"EX-2024-001", "Example Corp", "Example Widget vulnerabilities", "High",
				"2024-01-10T07:00:00Z", "2024-02-01T00:00:00Z", "Widget has bugs."}
			got := []string{b.ID, b.Vendor, b.Title, b.Severity, b.Released, b.Revised, b.Description}
			if !slices.Equal(got, want) {
				t.Errorf("bulletin fields = %q, want %q", got, want)
			}
			if !slices.Equal(b.CVEs, []string{"CVE-2024-0001", "CVE-2024-0002"}) {
				t.Errorf("CVEs = %q", b.CVEs)
			}
			// The second vulnerability repeats fix 1 with other white space: one update.
			if !slices.Equal(b.UpdateIDs, []string{"EX-2024-001/fix-1", "EX-2024-001/fix-2"}) {
				t.Errorf("UpdateIDs = %q", b.UpdateIDs)
			}
			u := a.Updates
			if len(u) != 2 || u[0].Title != "Update to Widget 2.0." || u[0].URL != "https://example.com/widget-2.0" ||
				u[0].Language != "en-US" || u[1].Title != "Install hotfix 7." || u[1].URL != "" {
				t.Errorf("updates = %+v", u)
			}
			if len(a.Warnings) != 0 {
				t.Errorf("warnings = %q", a.Warnings)
			}
		}},
		{"aggregate severity wins verbatim", func(d obj) {
			meta(d)["aggregate_severity"] = obj{"text": " Moderate to Critical "}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Severity != "Moderate to Critical" {
				t.Errorf("severity = %q", a.Bulletin.Severity)
			}
		}},
		{"severity from baseScore, lowercase and unknown ratings", func(d obj) {
			vuln(d, 0)["scores"] = []any{obj{"cvss_v3": obj{"baseScore": 9.8}}}
			vuln(d, 1)["scores"] = []any{obj{"cvss_v3": obj{"baseSeverity": "high"}}, obj{"cvss_v3": obj{"baseSeverity": "SEVERE"}}}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Severity != "Critical" || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], `"SEVERE"`) {
				t.Errorf("severity = %q, warnings %q", a.Bulletin.Severity, a.Warnings)
			}
		}},
		{"no scores: no severity", func(d obj) {
			delete(vuln(d, 0), "scores")
			vuln(d, 1)["scores"] = []any{obj{"cvss_v2": obj{"baseScore": 10}}}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Severity != "" {
				t.Errorf("severity = %q", a.Bulletin.Severity)
			}
		}},
		{"nested vendor branch", func(d obj) {
			d["product_tree"] = obj{"branches": []any{obj{"category": "product_family", "name": "X",
				"branches": []any{obj{"category": "vendor", "name": "Deep Vendor"}}}, obj{"category": "vendor", "name": "Later"}}}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Vendor != "Deep Vendor" {
				t.Errorf("vendor = %q", a.Bulletin.Vendor)
			}
		}},
		{"publisher when no vendor branch", func(d obj) { delete(d, "product_tree") }, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Vendor != "Example PSIRT" {
				t.Errorf("vendor = %q", a.Bulletin.Vendor)
			}
		}},
		{"description falls back to general", func(d obj) {
			meta(d)["notes"] = []any{obj{"category": "legal_disclaimer", "text": "L"}, obj{"category": "general", "text": " G\n"}}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Description != " G\n" {
				t.Errorf("description = %q", a.Bulletin.Description)
			}
		}},
		{"no vendor_fix: synthetic update, no lang: neutral", func(d obj) {
			delete(meta(d), "lang")
			d["vulnerabilities"] = []any{obj{"cve": "CVE-2024-0009", "remediations": []any{obj{"category": "workaround", "details": "w"}}}}
		}, func(t *testing.T, a *Advisory) {
			u := a.Updates
			if len(u) != 1 || u[0].ID != "EX-2024-001/advisory" || u[0].Language != "" ||
				u[0].URL != "https://example.com/advisories/EX-2024-001" ||
				u[0].Title != "Advisory (no vendor fix): Example Widget vulnerabilities" {
				t.Errorf("updates = %+v", u)
			}
			if !slices.Equal(a.Bulletin.UpdateIDs, []string{"EX-2024-001/advisory"}) || len(a.Warnings) != 1 {
				t.Errorf("UpdateIDs %q, warnings %q", a.Bulletin.UpdateIDs, a.Warnings)
			}
		}},
		{"long details shortened at a word", func(d obj) {
			vuln(d, 0)["remediations"] = []any{obj{"category": "vendor_fix", "details": long}}
		}, func(t *testing.T, a *Advisory) {
			title := a.Updates[0].Title
			if n := utf8.RuneCountInString(title); n > MaxTitleRunes || !strings.HasSuffix(title, " release Upgrade the…") {
				t.Errorf("title (%d runes) = %q", n, title)
			}
		}},
		{"empty details get a numbered title", func(d obj) {
			d["vulnerabilities"] = []any{obj{"remediations": []any{obj{"category": "vendor_fix", "url": "https://x"}}}}
		}, func(t *testing.T, a *Advisory) {
			if a.Updates[0].Title != "Vendor fix 1 for EX-2024-001" || len(a.Warnings) != 1 {
				t.Errorf("title %q, warnings %q", a.Updates[0].Title, a.Warnings)
			}
		}},
		{"bare dates kept, unknown fields ignored", func(d obj) {
			trackOf(d)["initial_release_date"] = "2024-01-10"
			d["x_unknown"] = []any{1, 2}
			meta(d)["x_other"] = obj{"a": true}
		}, func(t *testing.T, a *Advisory) {
			if a.Bulletin.Released != "2024-01-10" {
				t.Errorf("released = %q", a.Bulletin.Released)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(docWith(t, tc.mod))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, a)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "csaf: not JSON: not a patchtree feed or CSAF document"},
		{"not JSON", []byte("<html>"), "csaf: not JSON: not a patchtree feed or CSAF document"},
		{"truncated", docWith(t, nil)[:100], "csaf: not JSON: not a patchtree feed or CSAF document"},
		{"array", []byte(`[{"document":{}}]`), "csaf: not a CSAF document: top level is not a JSON object"},
		{"no document", []byte(`{"vulnerabilities":[]}`), "csaf: not a CSAF document: missing document"},
		{"no csaf_version", docWith(t, func(d obj) { delete(meta(d), "csaf_version") }),
			"csaf: not a CSAF document: missing document.csaf_version"},
		{"CSAF 1.2", docWith(t, func(d obj) { meta(d)["csaf_version"] = "1.2" }),
			`csaf: unsupported document.csaf_version (want "2.0")`},
		{"no tracking id", docWith(t, func(d obj) { trackOf(d)["id"] = "  " }), "csaf: missing document.tracking.id"},
		{"no title", docWith(t, func(d obj) { delete(meta(d), "title") }), "csaf: missing document.title"},
		{"bad initial date", docWith(t, func(d obj) { trackOf(d)["initial_release_date"] = "10/01/2024" }),
			`csaf: document.tracking.initial_release_date: invalid date (want RFC 3339)`},
		{"year 0 after conversion to UTC", docWith(t, func(d obj) { trackOf(d)["initial_release_date"] = "0000-01-01T00:00:00+01:00" }),
			`csaf: document.tracking.initial_release_date: date is out of range in UTC`},
		{"no current date", docWith(t, func(d obj) { delete(trackOf(d), "current_release_date") }),
			"csaf: missing document.tracking.current_release_date"},
		{"title is a number", docWith(t, func(d obj) { meta(d)["title"] = 7 }),
			"csaf: malformed CSAF document: field document.title at byte 446: number is not a JSON string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", a.Bulletin)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\n want %q", err, tc.want)
			}
		})
	}
}

// TestParseOASISExamples parses the OASIS CSAF 2.0 examples (Red Hat, Cisco, BSI). All of them
// are CSAF 2.0 documents, so all must parse; the output is logged.
func TestParseOASISExamples(t *testing.T) {
	dir := sharedData(t, "oasis-examples")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			b := a.Bulletin
			t.Logf("id=%s vendor=%q severity=%q released=%s revised=%s cves=%v", b.ID, b.Vendor, b.Severity, b.Released, b.Revised, b.CVEs)
			for _, u := range a.Updates {
				t.Logf("  update %s lang=%q url=%q title=%q", u.ID, u.Language, u.URL, u.Title)
			}
			for _, w := range a.Warnings {
				t.Logf("  warning: %s", w)
			}
			if b.Severity == "" || len(a.Updates) == 0 || len(b.UpdateIDs) != len(a.Updates) {
				t.Errorf("severity %q, %d updates, %d update ids", b.Severity, len(a.Updates), len(b.UpdateIDs))
			}
		})
	}
}
