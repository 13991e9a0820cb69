package csaf

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"patchtree/integration/shareddata"
)

// sharedData returns ../shared/data/csaf/<name> beside the module root, or skips the test.
func sharedData(t testing.TB, name string) string {
	t.Helper()
	return shareddata.Path(t, "csaf/"+name)
}

// copyTree copies the regular files of src into dst (made writable).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// obj is a JSON object under construction.
type obj = map[string]any

// baseDoc returns a small valid CSAF 2.0 document as a map that tests modify.
func baseDoc() obj {
	return obj{
		"document": obj{
			"category":     "csaf_security_advisory",
			"csaf_version": "2.0",
			"lang":         "en-US",
			"title":        "Example Widget vulnerabilities",
			"publisher":    obj{"category": "vendor", "name": "Example PSIRT", "namespace": "https://example.com"},
			"notes": []any{
				obj{"category": "general", "text": "General note."},
				obj{"category": "summary", "text": "Widget has bugs."},
			},
			"references": []any{
				obj{"category": "self", "url": "https://example.com/csaf/ex-2024-001.json"},
				obj{"category": "self", "url": "https://example.com/advisories/EX-2024-001"},
			},
			"tracking": obj{
				"id":                   "EX-2024-001",
				"initial_release_date": "2024-01-10T09:00:00+02:00",
				"current_release_date": "2024-02-01T00:00:00.000Z",
				"status":               "final",
				"version":              "2",
			},
		},
		"product_tree": obj{"branches": []any{
			obj{"category": "vendor", "name": "Example Corp", "branches": []any{
				obj{"category": "product_name", "name": "Widget"},
			}},
		}},
		"vulnerabilities": []any{
			obj{
				"cve":    "CVE-2024-0002",
				"scores": []any{obj{"cvss_v3": obj{"baseScore": 5.0, "baseSeverity": "MEDIUM"}}},
				"remediations": []any{
					obj{"category": "vendor_fix", "details": "Update to Widget 2.0.", "url": "https://example.com/widget-2.0"},
					obj{"category": "mitigation", "details": "Block port 80."},
				},
			},
			obj{
				"cve":    "CVE-2024-0001",
				"scores": []any{obj{"cvss_v3": obj{"baseScore": 8.1, "baseSeverity": "HIGH"}}},
				"remediations": []any{
					obj{"category": "vendor_fix", "details": "Update  to\nWidget 2.0. ", "url": "https://example.com/widget-2.0"},
					obj{"category": "vendor_fix", "details": "Install hotfix 7."},
				},
			},
		},
	}
}

// docWith returns baseDoc modified by fn, as JSON.
func docWith(t testing.TB, fn func(d obj)) []byte {
	t.Helper()
	d := baseDoc()
	if fn != nil {
		fn(d)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func meta(d obj) obj        { return d["document"].(obj) }
func trackOf(d obj) obj     { return meta(d)["tracking"].(obj) }
func vulns(d obj) []any     { return d["vulnerabilities"].([]any) }
func vuln(d obj, i int) obj { return vulns(d)[i].(obj) }
