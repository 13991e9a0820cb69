package policy

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"patchtree/store"
)

// catalog is a real store holding a small catalog, with a counter for Raft indexes.
type catalog struct {
	t   *testing.T
	s   *store.Store
	idx uint64
}

func newCatalog(t *testing.T) *catalog {
	t.Helper()
	s, err := store.New()
	if err != nil {
		t.Fatal(err)
	}
	return &catalog{t: t, s: s}
}

func (c *catalog) next() uint64 { c.idx++; return c.idx }

// upd describes one update of a bulletin in the test catalog.
type upd struct {
	id, lang   string
	superseded bool
}

// add imports one bulletin with its updates, as an import run does (stage + commit).
func (c *catalog) add(id, title string, updates ...upd) {
	c.t.Helper()
	b := &store.Bulletin{BulletinContent: store.BulletinContent{ID: id, Title: title}, Feed: "f"}
	var us []*store.Update
	for _, u := range updates {
		b.UpdateIDs = append(b.UpdateIDs, u.id)
		us = append(us, &store.Update{UpdateContent: store.UpdateContent{ID: u.id, Title: "u " + u.id, Language: u.lang}, Feed: "f", Superseded: u.superseded})
	}
	raw, err := store.EncodeBatch(&store.CatalogBatch{Bulletins: []*store.Bulletin{b}, Updates: us})
	if err != nil {
		c.t.Fatal(err)
	}
	run := "run-" + id
	if err := c.s.StageCatalog(c.next(), run, raw); err != nil {
		c.t.Fatal(err)
	}
	if err := c.s.CommitCatalog(c.next(), &store.ImportRun{ID: run, State: store.ImportSucceeded}, nil); err != nil {
		c.t.Fatal(err)
	}
}

func (c *catalog) disable(id string) {
	c.t.Helper()
	yes := true
	if err := c.s.SetBulletinAdmin(c.next(), id, nil, &yes); err != nil {
		c.t.Fatal(err)
	}
}

func (c *catalog) view() *store.CatalogView {
	c.t.Helper()
	v, err := c.s.CatalogView(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// testCatalog: two Firefox bulletins, one Thunderbird bulletin with a superseded update, and a
// disabled bulletin.
func testCatalog(t *testing.T) *catalog {
	c := newCatalog(t)
	c.add("MFSA-2019-01", "Firefox 66.0.1",
		upd{id: "fx1-de", lang: "de"}, upd{id: "fx1-de-at", lang: "de-AT"}, upd{id: "fx1-fr", lang: "fr"},
		upd{id: "fx1-dsb", lang: "dsb"}, upd{id: "fx1-any", lang: ""})
	c.add("MFSA-2019-02", "Firefox 66.0.2", upd{id: "fx2-de", lang: "de"}, upd{id: "fx2-fr", lang: "fr"})
	c.add("MFSA-2019-03", "Thunderbird 60.6",
		upd{id: "tb-en", lang: "en"}, upd{id: "tb-old", lang: "en", superseded: true})
	c.add("MFSA-2019-04", "Withdrawn", upd{id: "wd-en", lang: "en"})
	c.disable("MFSA-2019-04")
	return c
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2019, 3, 22, 10, 0, 0, 0, time.UTC)

func mustCreate(t *testing.T, v *store.CatalogView, in Input) *store.Policy {
	t.Helper()
	p, err := Create(v, "p-000000000001", in, t0, "alice")
	if err != nil {
		t.Fatalf("Create(%+v): %v", in, err)
	}
	return p
}

func updateIDs(p *store.Policy) []string {
	var out []string
	for _, u := range p.Updates {
		out = append(out, u.ID)
	}
	return out
}

func TestCreateDefaultsOneBulletin(t *testing.T) {
	c := testCatalog(t)
	p := mustCreate(t, c.view(), Input{Bulletins: []string{"MFSA-2019-03"}})
	want := &store.Policy{Origin: store.OriginLocal, PolicySpec: store.PolicySpec{
		ID: "p-000000000001", Name: "MFSA-2019-03", Description: "Thunderbird 60.6", Folder: "Default",
		Bulletins: []string{"MFSA-2019-03"},
		Updates: []store.PolicyUpdate{
			{ID: "tb-en", Bulletin: "MFSA-2019-03", Language: "en", Enabled: true},
			{ID: "tb-old", Bulletin: "MFSA-2019-03", Language: "en", Enabled: false},
		},
		Enabled: true, Run: "agent-default", Revision: 1,
		CreatedAt: t0, UpdatedAt: t0, CreatedBy: "alice", UpdatedBy: "alice",
	}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Create:\n got %+v\nwant %+v", p, want)
	}
}

func TestCreateDefaultsSeveralBulletins(t *testing.T) {
	c := testCatalog(t)
	p := mustCreate(t, c.view(), Input{Bulletins: []string{"MFSA-2019-02", "MFSA-2019-01", " MFSA-2019-02", "MFSA-2019-03"}})
	if p.Name != "MFSA-2019-02 and 2 more" {
		t.Errorf("name = %q", p.Name)
	}
	if p.Description != "Firefox 66.0.2; Firefox 66.0.1; Thunderbird 60.6" {
		t.Errorf("description = %q", p.Description)
	}
	if want := []string{"MFSA-2019-02", "MFSA-2019-01", "MFSA-2019-03"}; !reflect.DeepEqual(p.Bulletins, want) {
		t.Errorf("bulletins = %v, want %v (in request order, duplicates dropped)", p.Bulletins, want)
	}
	want := []store.PolicyUpdate{
		{ID: "fx2-de", Bulletin: "MFSA-2019-02", Language: "de", Enabled: true},
		{ID: "fx2-fr", Bulletin: "MFSA-2019-02", Language: "fr", Enabled: true},
		{ID: "fx1-de", Bulletin: "MFSA-2019-01", Language: "de", Enabled: true},
		{ID: "fx1-de-at", Bulletin: "MFSA-2019-01", Language: "de-AT", Enabled: true},
		{ID: "fx1-fr", Bulletin: "MFSA-2019-01", Language: "fr", Enabled: true},
		{ID: "fx1-dsb", Bulletin: "MFSA-2019-01", Language: "dsb", Enabled: true},
		{ID: "fx1-any", Bulletin: "MFSA-2019-01", Language: "", Enabled: true},
		{ID: "tb-en", Bulletin: "MFSA-2019-03", Language: "en", Enabled: true},
		{ID: "tb-old", Bulletin: "MFSA-2019-03", Language: "en", Enabled: false},
	}
	if !reflect.DeepEqual(p.Updates, want) {
		t.Errorf("updates:\n got %+v\nwant %+v", p.Updates, want)
	}
	if p.Folder != DefaultFolder || p.Run != store.RunAgentDefault || !p.Enabled || p.Revision != 1 || p.Origin != store.OriginLocal {
		t.Errorf("defaults: folder %q run %q enabled %v revision %d origin %q", p.Folder, p.Run, p.Enabled, p.Revision, p.Origin)
	}
	if p.OverrideMaintenanceWindow || p.AllowImmediateRestart {
		t.Errorf("booleans default false: %+v", p.PolicySpec)
	}
}

func TestCreateExplicitFields(t *testing.T) {
	c := testCatalog(t)
	p := mustCreate(t, c.view(), Input{
		Name: ptr("  Firefox March  "), Description: ptr(""), Folder: ptr("/Firefox/2019/"),
		Bulletins: []string{"MFSA-2019-01", "MFSA-2019-03"},
		Updates:   []UpdateFlag{{ID: "fx1-fr", Enabled: false}, {ID: "tb-old", Enabled: true}},
		Enabled:   ptr(false), Run: ptr("4h"),
		OverrideMaintenanceWindow: ptr(true), AllowImmediateRestart: ptr(true),
	})
	if p.Name != "Firefox March" || p.Description != "" || p.Folder != "Firefox/2019" || p.Enabled || p.Run != "4h" ||
		!p.OverrideMaintenanceWindow || !p.AllowImmediateRestart {
		t.Fatalf("explicit fields not taken: %+v", p.PolicySpec)
	}
	flags := map[string]bool{}
	for _, u := range p.Updates {
		flags[u.ID] = u.Enabled
	}
	if flags["fx1-fr"] || !flags["tb-old"] || !flags["fx1-de"] || !flags["tb-en"] {
		t.Fatalf("update overrides: %v", flags)
	}
	// A blank name and a blank folder take the defaults.
	p = mustCreate(t, c.view(), Input{Name: ptr("  "), Folder: ptr(" / "), Bulletins: []string{"MFSA-2019-01"}})
	if p.Name != "MFSA-2019-01" || p.Folder != "Default" {
		t.Fatalf("blank name/folder: name %q folder %q", p.Name, p.Folder)
	}
}

func TestCreateErrors(t *testing.T) {
	c := testCatalog(t)
	v := c.view()
	long := strings.Repeat("n", 301)
	cases := []struct {
		name string
		in   Input
		want string
	}{
		{"no bulletins", Input{}, `a policy needs at least one bulletin (field "bulletins"): invalid`},
		{"empty bulletins", Input{Bulletins: []string{}}, `a policy needs at least one bulletin (field "bulletins"): invalid`},
		{"unknown bulletin", Input{Bulletins: []string{"MFSA-2019-01", "MFSA-1999-99"}}, `bulletin "MFSA-1999-99" is not in the catalog: invalid`},
		{"disabled bulletin", Input{Bulletins: []string{"MFSA-2019-04"}}, `bulletin "MFSA-2019-04" is disabled; enable it before using it in a policy: invalid`},
		{"update of another bulletin", Input{Bulletins: []string{"MFSA-2019-03"}, Updates: []UpdateFlag{{ID: "fx1-de", Enabled: false}}},
			`update "fx1-de" is not in the policy's bulletins [MFSA-2019-03]: invalid`},
		{"unknown update", Input{Bulletins: []string{"MFSA-2019-03"}, Updates: []UpdateFlag{{ID: "nope", Enabled: true}}},
			`update "nope" is not in the policy's bulletins [MFSA-2019-03]: invalid`},
		{"run soon", Input{Bulletins: []string{"MFSA-2019-03"}, Run: ptr("soon")},
			`run "soon": want "agent-default", "asap", a daily time "HH:MM" or an interval of at least 1m such as "4h": invalid`},
		{"run 10s", Input{Bulletins: []string{"MFSA-2019-03"}, Run: ptr("10s")},
			`run "10s": want "agent-default", "asap", a daily time "HH:MM" or an interval of at least 1m such as "4h": invalid`},
		{"name too long", Input{Bulletins: []string{"MFSA-2019-03"}, Name: ptr(long)}, `policy name: is 301 bytes, limit is 128: invalid`},
		{"name with a bidi override", Input{Bulletins: []string{"MFSA-2019-03"}, Name: ptr("ok\u202Egpj.exe")},
			`policy name: contains the bidirectional formatting character U+202E at byte 2: invalid`},
		{"description too long", Input{Bulletins: []string{"MFSA-2019-03"}, Description: ptr(strings.Repeat("d", 4001))},
			`description has 4001 characters, at most 4000: invalid`},
		{"folder with newline", Input{Bulletins: []string{"MFSA-2019-03"}, Folder: ptr("a\nb")},
			`folder name: contains the control character U+000A at byte 1: invalid`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Create(v, "p-1", tc.in, t0, "alice")
			if err == nil {
				t.Fatalf("no error; policy %+v", p)
			}
			if p != nil {
				t.Errorf("policy returned with the error: %+v", p)
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("error %v does not wrap store.ErrInvalid", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
	// 128 bytes is still fine.
	if _, err := Create(v, "p-1", Input{Bulletins: []string{"MFSA-2019-03"}, Name: ptr(strings.Repeat("n", store.MaxNameBytes))}, t0, "a"); err != nil {
		t.Fatalf("name of 128 bytes: %v", err)
	}
}

// The default description is at most 1,000 characters (docs/policies.md): a long list of titles
// is cut, and the cut must not split a character.
func TestCreateDefaultDescriptionTruncated(t *testing.T) {
	c := newCatalog(t)
	var ids []string
	for i := 0; i < 30; i++ {
		id := "B-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		ids = append(ids, id)
		c.add(id, strings.Repeat("x", 60), upd{id: id + "-u", lang: "en"})
	}
	p := mustCreate(t, c.view(), Input{Bulletins: ids})
	if len(p.Description) != 1000 || !strings.HasSuffix(p.Description, "...") {
		t.Fatalf("description of %d bytes: %q", len(p.Description), p.Description)
	}
	if p.Name != "B-Aa and 29 more" {
		t.Fatalf("name = %q", p.Name)
	}
}

func TestCreateDefaultDescriptionTruncatedMultibyte(t *testing.T) {
	c := newCatalog(t)
	var ids []string
	for i := 0; i < 30; i++ {
		id := "B-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		ids = append(ids, id)
		// 2-byte characters: "é" repeated, so byte 997 falls inside a character.
		c.add(id, strings.Repeat("é", 30), upd{id: id + "-u", lang: "en"})
	}
	p := mustCreate(t, c.view(), Input{Bulletins: ids})
	if !utf8.ValidString(p.Description) {
		t.Errorf("default description is not valid UTF-8: ends %q", p.Description[len(p.Description)-8:])
	}
	if n := utf8.RuneCountInString(p.Description); n > 1000 {
		t.Errorf("default description has %d characters, at most 1000", n)
	}
}

func TestParseRun(t *testing.T) {
	ok := map[string]string{
		"":              "agent-default",
		"agent-default": "agent-default",
		" asap ":        "asap",
		"08:30":         "08:30",
		"8:05":          "08:05",
		"23:59":         "23:59",
		"4h":            "4h",
		"1m":            "1m",
		"90m":           "90m",
	}
	for in, want := range ok {
		got, err := ParseRun(in)
		if err != nil || got != want {
			t.Errorf("ParseRun(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"soon", "10s", "59s", "25:00", "12:60", "-4h", "0", "ASAP", "daily"} {
		got, err := ParseRun(in)
		if err == nil || !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParseRun(%q) = %q, %v; want an invalid error", in, got, err)
		}
	}
}

func TestPatchKeepsUntouchedFields(t *testing.T) {
	c := testCatalog(t)
	v := c.view()
	old := mustCreate(t, v, Input{Name: ptr("FF"), Description: ptr("d"), Folder: ptr("Firefox"),
		Bulletins: []string{"MFSA-2019-01"}, Updates: []UpdateFlag{{ID: "fx1-fr", Enabled: false}},
		Run: ptr("asap"), AllowImmediateRestart: ptr(true)})
	old.ModifyIndex, old.CreateIndex = 40, 30
	before := clonePolicy(old)

	t1 := t0.Add(time.Hour)
	p, err := Patch(v, old, Input{Enabled: ptr(false)}, t1, "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := clonePolicy(before)
	want.Enabled, want.Revision, want.UpdatedAt, want.UpdatedBy = false, 2, t1, "bob"
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Patch:\n got %+v\nwant %+v", p, want)
	}
	if !reflect.DeepEqual(old, before) {
		t.Fatalf("Patch changed the old policy: %+v", old)
	}

	// A second patch changes flags and run, and counts the revision on.
	p2, err := Patch(v, p, Input{Updates: []UpdateFlag{{ID: "fx1-fr", Enabled: true}, {ID: "fx1-de", Enabled: false}}, Run: ptr("07:00")}, t1, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if p2.Revision != 3 || p2.Run != "07:00" || p2.Name != "FF" || p2.Description != "d" || p2.Folder != "Firefox" ||
		p2.CreatedBy != "alice" || p2.UpdatedBy != "carol" || !p2.AllowImmediateRestart || p2.Enabled {
		t.Fatalf("second patch: %+v", p2.PolicySpec)
	}
	if p.Updates[0].Enabled != true || p.Run != "asap" {
		t.Fatalf("second patch changed the first result: %+v", p.PolicySpec)
	}
	for _, u := range p2.Updates {
		if want := u.ID != "fx1-de"; u.Enabled != want {
			t.Errorf("update %s enabled %v, want %v", u.ID, u.Enabled, want)
		}
	}
}

func TestPatchReplacesBulletins(t *testing.T) {
	c := testCatalog(t)
	v := c.view()
	old := mustCreate(t, v, Input{Bulletins: []string{"MFSA-2019-01", "MFSA-2019-02"},
		Updates: []UpdateFlag{{ID: "fx1-fr", Enabled: false}, {ID: "fx2-de", Enabled: false}}})
	p, err := Patch(v, old, Input{Bulletins: []string{"MFSA-2019-03", "MFSA-2019-01"}}, t0, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"MFSA-2019-03", "MFSA-2019-01"}; !reflect.DeepEqual(p.Bulletins, want) {
		t.Fatalf("bulletins %v, want %v", p.Bulletins, want)
	}
	want := []store.PolicyUpdate{
		{ID: "tb-en", Bulletin: "MFSA-2019-03", Language: "en", Enabled: true},
		{ID: "tb-old", Bulletin: "MFSA-2019-03", Language: "en", Enabled: false},
		{ID: "fx1-de", Bulletin: "MFSA-2019-01", Language: "de", Enabled: true},
		{ID: "fx1-de-at", Bulletin: "MFSA-2019-01", Language: "de-AT", Enabled: true},
		{ID: "fx1-fr", Bulletin: "MFSA-2019-01", Language: "fr", Enabled: false}, // kept flag
		{ID: "fx1-dsb", Bulletin: "MFSA-2019-01", Language: "dsb", Enabled: true},
		{ID: "fx1-any", Bulletin: "MFSA-2019-01", Language: "", Enabled: true},
	}
	if !reflect.DeepEqual(p.Updates, want) {
		t.Fatalf("updates:\n got %+v\nwant %+v", p.Updates, want)
	}
	if p.Revision != 2 {
		t.Fatalf("revision %d", p.Revision)
	}
	// The name and description are the policy's own by now: a bulletin change keeps them.
	if p.Name != old.Name || p.Description != old.Description {
		t.Fatalf("name/description changed: %q %q", p.Name, p.Description)
	}
	// Bulletins and flags in one request: flags apply to the new list.
	p, err = Patch(v, old, Input{Bulletins: []string{"MFSA-2019-03"}, Updates: []UpdateFlag{{ID: "tb-old", Enabled: true}}}, t0, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Updates[1].Enabled {
		t.Fatalf("flag for a new bulletin's update not applied: %+v", p.Updates)
	}
	// A flag for an update of a removed bulletin is an error.
	_, err = Patch(v, old, Input{Bulletins: []string{"MFSA-2019-03"}, Updates: []UpdateFlag{{ID: "fx1-fr", Enabled: true}}}, t0, "bob")
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `update "fx1-fr" is not in the policy's bulletins`) {
		t.Fatalf("flag of removed bulletin: %v", err)
	}
}

func TestPatchErrors(t *testing.T) {
	c := testCatalog(t)
	v := c.view()
	old := mustCreate(t, v, Input{Bulletins: []string{"MFSA-2019-01"}})
	before := clonePolicy(old)
	for _, in := range []Input{
		{Bulletins: []string{}},
		{Bulletins: []string{"MFSA-2019-04"}},
		{Bulletins: []string{"nope"}},
		{Run: ptr("10s")},
		{Name: ptr(strings.Repeat("x", 301))},
		{Updates: []UpdateFlag{{ID: "tb-en"}}},
	} {
		p, err := Patch(v, old, in, t0, "bob")
		if !errors.Is(err, store.ErrInvalid) || p != nil {
			t.Errorf("Patch(%+v) = %v, %v; want an invalid error", in, p, err)
		}
	}
	if !reflect.DeepEqual(old, before) {
		t.Fatalf("failed patches changed the policy: %+v", old)
	}
	// A blank name in a patch resets to the default from the bulletins.
	p, err := Patch(v, clonePolicy(before), Input{Name: ptr("x")}, t0, "bob")
	if err != nil {
		t.Fatal(err)
	}
	p, err = Patch(v, p, Input{Name: ptr(" ")}, t0, "bob")
	if err != nil || p.Name != "MFSA-2019-01" {
		t.Fatalf("blank name: %v, %+v", err, p)
	}
}

func clonePolicy(p *store.Policy) *store.Policy {
	c := *p
	c.Bulletins = append([]string(nil), p.Bulletins...)
	c.Updates = append([]store.PolicyUpdate(nil), p.Updates...)
	return &c
}

func TestFilter(t *testing.T) {
	c := testCatalog(t)
	p := mustCreate(t, c.view(), Input{Bulletins: []string{"MFSA-2019-03", "MFSA-2019-01", "MFSA-2019-02"}})
	p.ModifyIndex, p.CreateIndex = 77, 70
	before := clonePolicy(p)

	f := Filter(p, []string{"de"})
	if want := []string{"MFSA-2019-01", "MFSA-2019-02"}; !reflect.DeepEqual(f.Bulletins, want) {
		t.Errorf("bulletins %v, want %v", f.Bulletins, want)
	}
	if want := []string{"fx1-de", "fx1-de-at", "fx1-any", "fx2-de"}; !reflect.DeepEqual(updateIDs(f), want) {
		t.Errorf("updates %v, want %v", updateIDs(f), want)
	}
	if f.Origin != store.OriginParent || f.ParentIndex != 77 || f.ModifyIndex != 0 || f.CreateIndex != 0 {
		t.Errorf("origin %q parent index %d raft %+v", f.Origin, f.ParentIndex, f.RaftIndex)
	}
	if f.Name != p.Name || f.Revision != p.Revision || f.Run != p.Run || f.ID != p.ID {
		t.Errorf("spec fields not carried: %+v", f.PolicySpec)
	}
	if !reflect.DeepEqual(p, before) {
		t.Fatalf("Filter changed its input: %+v", p)
	}

	// Ranges match case-insensitively.
	if got := updateIDs(Filter(p, []string{"DE-at"})); !reflect.DeepEqual(got, []string{"fx1-de-at", "fx1-any"}) {
		t.Errorf("DE-at: %v", got)
	}
	// "*" keeps everything, in order.
	all := Filter(p, []string{"*"})
	if !reflect.DeepEqual(all.Updates, p.Updates) || !reflect.DeepEqual(all.Bulletins, p.Bulletins) {
		t.Errorf("*: %+v", all.PolicySpec)
	}
	// No match at all: a policy with no bulletins and no updates (still sent, empty lists).
	none := Filter(p, []string{"ja"})
	if none.Bulletins == nil || none.Updates == nil {
		t.Errorf("empty lists must be non-nil: %#v %#v", none.Bulletins, none.Updates)
	}
	if want := []string{"MFSA-2019-01"}; !reflect.DeepEqual(none.Bulletins, want) {
		// fx1-any is language-neutral: it reaches every child with its bulletin.
		t.Errorf("ja bulletins %v, want %v", none.Bulletins, want)
	}
	if want := []string{"fx1-any"}; !reflect.DeepEqual(updateIDs(none), want) {
		t.Errorf("ja updates %v, want %v", updateIDs(none), want)
	}
	q := mustCreate(t, c.view(), Input{Bulletins: []string{"MFSA-2019-03"}})
	if e := Filter(q, []string{"fr"}); len(e.Bulletins) != 0 || len(e.Updates) != 0 {
		t.Errorf("fr of an English-only policy: %+v", e.PolicySpec)
	}
	if got := updateIDs(Filter(p, []string{"fr", "dsb"})); !reflect.DeepEqual(got, []string{"fx1-fr", "fx1-dsb", "fx1-any", "fx2-fr"}) {
		t.Errorf("fr,dsb: %v", got)
	}
}

func TestDigest(t *testing.T) {
	c := testCatalog(t)
	v := c.view()
	a := mustCreate(t, v, Input{Bulletins: []string{"MFSA-2019-01"}})
	b, err := Create(v, "p-000000000002", Input{Bulletins: []string{"MFSA-2019-03"}}, t0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	d1 := Digest([]*store.Policy{a, b})
	if d2 := Digest([]*store.Policy{b, a}); d1 != d2 {
		t.Fatalf("digest depends on order: %s vs %s", d1, d2)
	}
	if Digest(nil) == d1 || Digest([]*store.Policy{a}) == d1 {
		t.Fatal("digest of a subset equals the digest of the set")
	}
	if Digest(nil) != Digest([]*store.Policy{}) {
		t.Fatal("empty digests differ")
	}
	// Raft indexes and origin are not content.
	a2 := clonePolicy(a)
	a2.ModifyIndex, a2.Origin, a2.ParentIndex = 99, store.OriginParent, 12
	if Digest([]*store.Policy{b, a2}) != d1 {
		t.Fatal("digest depends on indexes or origin")
	}
	// One update flag changes it.
	a3 := clonePolicy(a)
	a3.Updates[2].Enabled = !a3.Updates[2].Enabled
	if Digest([]*store.Policy{a3, b}) == d1 {
		t.Fatal("digest does not see one update flag")
	}
	a4 := clonePolicy(a)
	a4.AllowImmediateRestart = true
	if Digest([]*store.Policy{a4, b}) == d1 {
		t.Fatal("digest does not see allow_immediate_restart")
	}
	// A parent's filtered copy and a child's copy of it digest the same.
	fa, fb := Filter(a, []string{"de"}), Filter(b, []string{"de"})
	child := clonePolicy(fa)
	child.ModifyIndex, child.CreateIndex = 5, 5
	if Digest([]*store.Policy{fa, fb}) != Digest([]*store.Policy{fb, child}) {
		t.Fatal("filtered copies digest differently")
	}
	if !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(d1) {
		t.Fatalf("digest %q is not hex", d1)
	}
}

func TestSettingsDigest(t *testing.T) {
	a := &store.SettingDoc{Name: "assessment", Body: []byte(`{"scan_interval":"24h","scan_on_catalog_change":false}`)}
	b := &store.SettingDoc{Name: "remediation", Body: []byte(`{"max_concurrent":1}`)}
	d := SettingsDigest([]*store.SettingDoc{a, b})
	if d != SettingsDigest([]*store.SettingDoc{b, a}) {
		t.Fatal("settings digest depends on order")
	}
	b2 := *b
	b2.Body = []byte(`{"max_concurrent":2}`)
	if d == SettingsDigest([]*store.SettingDoc{a, &b2}) {
		t.Fatal("settings digest does not see the body")
	}
	b3 := *b
	b3.Origin, b3.ModifyIndex, b3.UpdatedBy = store.OriginParent, 9, "x"
	if d != SettingsDigest([]*store.SettingDoc{a, &b3}) {
		t.Fatal("settings digest depends on origin, index or author")
	}
}

func TestSort(t *testing.T) {
	mk := func(id, folder, name string) *store.Policy {
		return &store.Policy{PolicySpec: store.PolicySpec{ID: id, Folder: folder, Name: name}}
	}
	ps := []*store.Policy{
		mk("p-3", "Firefox/2019", "b"), mk("p-1", "Default", "z"), mk("p-5", "Firefox/2019", "a"),
		mk("p-4", "Firefox", "z"), mk("p-2", "Firefox/2019", "a"),
	}
	Sort(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.ID)
	}
	if want := []string{"p-1", "p-4", "p-2", "p-5", "p-3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^p-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := NewID()
		if !re.MatchString(id) || seen[id] {
			t.Fatalf("id %q (repeat %v)", id, seen[id])
		}
		seen[id] = true
	}
}
