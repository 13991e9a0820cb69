package csaf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"patchtree/store"
)

// MaxTitleRunes is the longest update title Parse derives from a remediation's details.
const MaxTitleRunes = 120

// Advisory is one CSAF document mapped to the catalog.
type Advisory struct {
	Bulletin store.BulletinContent
	// Updates are listed in the order of Bulletin.UpdateIDs.
	Updates []store.UpdateContent
	// Warnings are non-fatal oddities worth reporting in an import result.
	Warnings []string
}

// The subset of the CSAF 2.0 schema Parse reads; unknown fields are ignored.
type csafDoc struct {
	Document        *docMeta        `json:"document"`
	ProductTree     *productTree    `json:"product_tree"`
	Vulnerabilities []vulnerability `json:"vulnerabilities"`
}

type docMeta struct {
	CSAFVersion       *string      `json:"csaf_version"`
	Lang              string       `json:"lang"`
	Title             string       `json:"title"`
	Publisher         publisher    `json:"publisher"`
	AggregateSeverity *aggSeverity `json:"aggregate_severity"`
	Notes             []note       `json:"notes"`
	References        []reference  `json:"references"`
	Tracking          tracking     `json:"tracking"`
}

type publisher struct {
	Name string `json:"name"`
}

type aggSeverity struct {
	Text string `json:"text"`
}

type note struct {
	Category string `json:"category"`
	Text     string `json:"text"`
}

type reference struct {
	Category string `json:"category"`
	URL      string `json:"url"`
}

type tracking struct {
	ID                 string `json:"id"`
	InitialReleaseDate string `json:"initial_release_date"`
	CurrentReleaseDate string `json:"current_release_date"`
}

type productTree struct {
	Branches []branch `json:"branches"`
}

type branch struct {
	Category string   `json:"category"`
	Name     string   `json:"name"`
	Branches []branch `json:"branches"`
}

type vulnerability struct {
	CVE          string        `json:"cve"`
	Scores       []score       `json:"scores"`
	Remediations []remediation `json:"remediations"`
}

type score struct {
	CVSSv3 *cvssV3 `json:"cvss_v3"`
}

type cvssV3 struct {
	BaseSeverity string   `json:"baseSeverity"`
	BaseScore    *float64 `json:"baseScore"`
}

type remediation struct {
	Category string `json:"category"`
	Details  string `json:"details"`
	URL      string `json:"url"`
}

// Parse maps one CSAF 2.0 JSON document to a bulletin and its updates, following the rules in
// the package documentation. It fails, naming the field, on input that is not JSON, is not a
// CSAF 2.0 document (document.csaf_version missing or not "2.0"), lacks document.tracking.id or
// document.title, or has a missing or malformed tracking date.
func Parse(data []byte) (*Advisory, error) {
	if !json.Valid(data) {
		return nil, errors.New("csaf: not JSON: not a patchtree feed or CSAF document")
	}
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("csaf: not a CSAF document: top level is not a JSON object")
	}
	var doc csafDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			kind, _, _ := strings.Cut(te.Value, " ") // "number 1e999" → "number": no values in errors
			return nil, fmt.Errorf("csaf: malformed CSAF document: field %s at byte %d: %s is not a JSON %s", te.Field, te.Offset, kind, te.Type)
		}
		return nil, errors.New("csaf: malformed CSAF document")
	}
	m := doc.Document
	switch {
	case m == nil:
		return nil, errors.New("csaf: not a CSAF document: missing document")
	case m.CSAFVersion == nil:
		return nil, errors.New("csaf: not a CSAF document: missing document.csaf_version")
	case *m.CSAFVersion != "2.0":
		return nil, errors.New(`csaf: unsupported document.csaf_version (want "2.0")`)
	}
	id := strings.TrimSpace(m.Tracking.ID)
	if id == "" {
		return nil, errors.New("csaf: missing document.tracking.id")
	}
	title := strings.TrimSpace(m.Title)
	if title == "" {
		return nil, errors.New("csaf: missing document.title") // the document is named by its path
	}
	released, err := normDate("document.tracking.initial_release_date", m.Tracking.InitialReleaseDate)
	if err != nil {
		return nil, fmt.Errorf("csaf: %w", err)
	}
	revised, err := normDate("document.tracking.current_release_date", m.Tracking.CurrentReleaseDate)
	if err != nil {
		return nil, fmt.Errorf("csaf: %w", err)
	}

	a := &Advisory{Bulletin: store.BulletinContent{
		ID:          id,
		Vendor:      vendorOf(doc.ProductTree, m.Publisher.Name),
		Title:       title,
		Released:    released,
		Revised:     revised,
		Description: descriptionOf(m.Notes),
		UpdateIDs:   []string{},
	}}
	a.Bulletin.Severity = a.severityOf(m.AggregateSeverity, doc.Vulnerabilities)

	lang := strings.TrimSpace(m.Lang)
	seenFix := map[string]bool{}
	for _, v := range doc.Vulnerabilities {
		if cve := strings.TrimSpace(v.CVE); cve != "" {
			a.Bulletin.CVEs = append(a.Bulletin.CVEs, cve)
		}
		for _, r := range v.Remediations {
			if r.Category != "vendor_fix" {
				continue
			}
			details, url := collapseSpace(r.Details), strings.TrimSpace(r.URL)
			key := details + "\x00" + url
			if seenFix[key] {
				continue
			}
			seenFix[key] = true
			n := len(a.Updates) + 1
			u := store.UpdateContent{
				ID:       fmt.Sprintf("%s/fix-%d", id, n),
				Title:    shorten(details, MaxTitleRunes),
				Language: lang,
				URL:      url,
			}
			if u.Title == "" {
				u.Title = fmt.Sprintf("Vendor fix %d for %s", n, id)
				a.warnf("vendor_fix %d has no details; titled %q", n, u.Title)
			}
			a.Updates = append(a.Updates, u)
		}
	}
	slices.Sort(a.Bulletin.CVEs)
	a.Bulletin.CVEs = slices.Compact(a.Bulletin.CVEs)
	if len(a.Updates) == 0 {
		u := store.UpdateContent{
			ID:       id + "/advisory",
			Title:    shorten("Advisory (no vendor fix): "+collapseSpace(title), MaxTitleRunes),
			Language: lang,
			URL:      selfPage(m.References),
		}
		a.Updates = append(a.Updates, u)
		a.warnf("no vendor_fix remediation; synthesized update %s", u.ID)
	}
	for _, u := range a.Updates {
		a.Bulletin.UpdateIDs = append(a.Bulletin.UpdateIDs, u.ID)
	}
	return a, nil
}

func (a *Advisory) warnf(format string, args ...any) {
	a.Warnings = append(a.Warnings, fmt.Sprintf(format, args...))
}

// normDate normalizes an RFC 3339 time to UTC "2006-01-02T15:04:05Z"; a bare date is kept.
func normDate(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("missing %s", field)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return "", fmt.Errorf("%s: date is out of range in UTC", field)
		}
		return t.UTC().Format("2006-01-02T15:04:05Z"), nil
	}
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return s, nil
	}
	return "", fmt.Errorf("%s: invalid date (want RFC 3339)", field)
}

// vendorOf returns the first vendor branch name (depth first), else the publisher's name.
func vendorOf(pt *productTree, publisher string) string {
	if pt != nil {
		stack := slices.Clone(pt.Branches)
		slices.Reverse(stack)
		for len(stack) > 0 {
			b := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if b.Category == "vendor" && strings.TrimSpace(b.Name) != "" {
				return strings.TrimSpace(b.Name)
			}
			for i := len(b.Branches) - 1; i >= 0; i-- {
				stack = append(stack, b.Branches[i])
			}
		}
	}
	return strings.TrimSpace(publisher)
}

// descriptionOf returns the first note of category summary, else description, else general.
func descriptionOf(notes []note) string {
	for _, cat := range []string{"summary", "description", "general"} {
		for _, n := range notes {
			if n.Category == cat && strings.TrimSpace(n.Text) != "" {
				return n.Text
			}
		}
	}
	return ""
}

// cvssNames are the CVSS v3 qualitative ratings, lowest first, as Parse presents them.
var cvssNames = []string{"None", "Low", "Medium", "High", "Critical"}

// severityOf returns aggregate_severity.text, else the highest CVSS v3 rating, else "".
func (a *Advisory) severityOf(agg *aggSeverity, vulns []vulnerability) string {
	if agg != nil && strings.TrimSpace(agg.Text) != "" {
		return strings.TrimSpace(agg.Text)
	}
	best := -1
	for _, v := range vulns {
		for _, s := range v.Scores {
			if s.CVSSv3 == nil {
				continue
			}
			r := rankOf(s.CVSSv3)
			if r < 0 {
				a.warnf("vulnerability %s: unrecognized CVSS v3 baseSeverity %q ignored", v.CVE, s.CVSSv3.BaseSeverity)
			}
			best = max(best, r)
		}
	}
	if best < 0 {
		return ""
	}
	return cvssNames[best]
}

// rankOf is the index in cvssNames of a CVSS v3 score's rating, or -1.
func rankOf(c *cvssV3) int {
	if c.BaseSeverity != "" {
		for i, n := range cvssNames {
			if strings.EqualFold(strings.TrimSpace(c.BaseSeverity), n) {
				return i
			}
		}
		return -1
	}
	if c.BaseScore == nil || math.IsNaN(*c.BaseScore) || *c.BaseScore < 0 || *c.BaseScore > 10 {
		return -1
	}
	switch s := *c.BaseScore; {
	case s == 0:
		return 0
	case s < 4:
		return 1
	case s < 7:
		return 2
	case s < 9:
		return 3
	default:
		return 4
	}
}

// selfPage is the document's first "self" reference that is not the JSON document itself.
func selfPage(refs []reference) string {
	for _, r := range refs {
		u := strings.TrimSpace(r.URL)
		if r.Category == "self" && u != "" && !strings.HasSuffix(strings.ToLower(u), ".json") {
			return u
		}
	}
	return ""
}

// collapseSpace trims s and replaces each run of white space with one space.
func collapseSpace(s string) string {
	return strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
}

// shorten cuts s (already whitespace-collapsed) to at most n runes, at a word boundary when
// one lies in the second half, ending it with "…".
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	cut := len(r)
	for i := len(r) - 1; i >= n/2; i-- {
		if r[i] == ' ' {
			cut = i
			break
		}
	}
	return strings.TrimRightFunc(string(r[:cut]), func(c rune) bool {
		return unicode.IsSpace(c) || unicode.IsPunct(c)
	}) + "…"
}
