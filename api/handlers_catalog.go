package api

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"patchtree/langalert"
	"patchtree/node"
	"patchtree/replication/importer"
	"patchtree/store"
)

// startImport is POST /v1/catalog/import: 202 with the new run; progress at
// GET /v1/catalog/imports/{id}.
func (s *Server) startImport(r *http.Request) (int, any, error) {
	var req importer.Request
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if err := s.requireParent("catalog import"); err != nil {
		return 0, nil, err
	}
	if s.opts.Importer == nil {
		return 0, nil, fmt.Errorf("this server cannot import: %w", store.ErrConflict)
	}
	p, err := s.opts.Importer.Start(req)
	if err != nil {
		return 0, nil, err
	}
	if err := s.auditImport(r, p, p.Source); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, p, nil
}

// requireParent refuses an operation that only a parent site performs.
func (s *Server) requireParent(what string) error {
	site, err := s.backend.State().Site(nil)
	if err != nil {
		return err
	}
	if site != nil && site.Role != node.RoleParent {
		return fmt.Errorf("%s runs at a parent; %q is a child, whose catalog is replicated from its parent and read-only: %w", what, site.Name, store.ErrConflict)
	}
	return nil
}

type importsResponse struct {
	Imports []*importer.Progress `json:"imports"`
}

func (s *Server) listImports(r *http.Request) (int, any, error) {
	if s.opts.Importer == nil {
		return http.StatusOK, importsResponse{Imports: []*importer.Progress{}}, nil
	}
	runs, err := s.opts.Importer.Runs()
	if err != nil {
		return 0, nil, err
	}
	for i, p := range runs {
		runs[i] = redactImport(r, p)
	}
	return http.StatusOK, importsResponse{Imports: runs}, nil
}

func (s *Server) getImport(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	if s.opts.Importer == nil {
		return 0, nil, fmt.Errorf("import run %q: %w", id, store.ErrNotFound)
	}
	p, err := s.opts.Importer.Run(id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, redactImport(r, p), nil
}

// cancelImport is DELETE /v1/catalog/imports/{id}: it stops a running import, which ends
// "cancelled" with the catalog unchanged; 409 for an import that already finished.
func (s *Server) cancelImport(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	if s.opts.Importer == nil {
		return 0, nil, fmt.Errorf("import run %q: %w", id, store.ErrNotFound)
	}
	p, err := s.opts.Importer.Cancel(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

// importDetailsHidden replaces an import's error and warnings for callers who are not admins:
// they may quote the source, and only admins chose it.
const importDetailsHidden = "details for admins"

// redactImport returns p as the caller may see it: progress and counts for every role, the
// error and per-record warnings for admins only.
func redactImport(r *http.Request, p *importer.Progress) *importer.Progress {
	if tok := callerToken(r); tok != nil && tok.Role == store.RoleAdmin {
		return p
	}
	c := *p
	if c.Error != "" {
		c.Error = "import " + c.State + "; " + importDetailsHidden
	}
	if n := len(c.Result.Warnings); n > 0 {
		c.Result.Warnings = []string{fmt.Sprintf("%d warnings; %s", n, importDetailsHidden)}
	}
	return &c
}

// catalogResponse is GET /v1/catalog.
type catalogResponse struct {
	store.CatalogInfo
	Languages      []languageCount        `json:"languages"`
	Sources        []*store.SourceState   `json:"sources"`
	SeverityLevels []*store.SeverityLevel `json:"severity_levels"`
}

type languageCount struct {
	Language string `json:"language"`
	Updates  int    `json:"updates"`
}

func (s *Server) catalogInfo(r *http.Request) (int, any, error) {
	state := s.backend.State()
	view, err := state.CatalogView(nil)
	if err != nil {
		return 0, nil, err
	}
	counts := map[string]int{}
	view.EachUpdate(func(u *store.Update) bool {
		counts[u.Language]++
		return true
	})
	resp := catalogResponse{CatalogInfo: view.Info, Languages: []languageCount{}}
	for lang, n := range counts {
		resp.Languages = append(resp.Languages, languageCount{Language: lang, Updates: n})
	}
	sort.Slice(resp.Languages, func(i, j int) bool { return resp.Languages[i].Language < resp.Languages[j].Language })
	if resp.Sources, err = state.Sources(nil); err != nil {
		return 0, nil, err
	}
	if resp.SeverityLevels, err = state.SeverityLevels(nil); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, resp, nil
}

// bulletinSummary is a bulletin in a list.
type bulletinSummary struct {
	ID             string   `json:"id"`
	Vendor         string   `json:"vendor,omitempty"`
	Title          string   `json:"title"`
	Severity       string   `json:"severity,omitempty"`
	CustomSeverity string   `json:"custom_severity,omitempty"`
	Released       string   `json:"released,omitempty"`
	Revised        string   `json:"revised,omitempty"`
	CVEs           []string `json:"cves,omitempty"`
	Updates        int      `json:"updates"`
	Disabled       bool     `json:"disabled,omitempty"`
	Feed           string   `json:"feed"`
	ModifyIndex    uint64   `json:"modify_index"`
}

type bulletinsResponse struct {
	Version   uint64            `json:"version"`
	Total     int               `json:"total"`
	Page      int               `json:"page"`
	PerPage   int               `json:"per_page"`
	Bulletins []bulletinSummary `json:"bulletins"`
}

// bulletinFilter holds the list filters of GET /v1/catalog/bulletins.
type bulletinFilter struct {
	language, severity, vendor, q string
}

func (f *bulletinFilter) match(v *store.CatalogView, b *store.Bulletin) bool {
	switch {
	case f.vendor != "" && !strings.EqualFold(f.vendor, b.Vendor):
		return false
	case f.severity != "" && !strings.EqualFold(f.severity, b.Severity) && !strings.EqualFold(f.severity, b.CustomSeverity):
		return false
	case f.q != "" && !containsFold(f.q, b.ID, b.Title, strings.Join(b.CVEs, " ")):
		return false
	}
	if f.language == "" {
		return true
	}
	for _, id := range b.UpdateIDs {
		if u := v.Update(id); u != nil && langalert.Match(f.language, u.Language) {
			return true
		}
	}
	return false
}

func containsFold(q string, fields ...string) bool {
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// intParam reads a positive integer query parameter.
func intParam(r *http.Request, name string, def, max int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%w: %s must be a whole number from 1 to %d, not %q", ErrBadRequest, name, max, raw)
	}
	return n, nil
}

func (s *Server) listBulletins(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	f := bulletinFilter{severity: q.Get("severity"), vendor: q.Get("vendor"), q: q.Get("q")}
	if lang := q.Get("language"); lang != "" {
		rng, err := langalert.ParseRange(lang)
		if err != nil {
			return 0, nil, err
		}
		f.language = rng
	}
	page, err := intParam(r, "page", 1, 1<<30)
	if err != nil {
		return 0, nil, err
	}
	perPage, err := intParam(r, "per_page", 50, 1000)
	if err != nil {
		return 0, nil, err
	}
	view, err := s.backend.State().CatalogView(nil)
	if err != nil {
		return 0, nil, err
	}
	resp := bulletinsResponse{Version: view.Info.Version, Page: page, PerPage: perPage, Bulletins: []bulletinSummary{}}
	skip := (page - 1) * perPage
	view.EachBulletin(func(b *store.Bulletin) bool {
		if !f.match(view, b) {
			return true
		}
		resp.Total++
		if resp.Total > skip && len(resp.Bulletins) < perPage {
			resp.Bulletins = append(resp.Bulletins, bulletinSummary{
				ID: b.ID, Vendor: b.Vendor, Title: b.Title, Severity: b.Severity, CustomSeverity: b.CustomSeverity,
				Released: b.Released, Revised: b.Revised, CVEs: b.CVEs, Updates: len(b.UpdateIDs),
				Disabled: b.Disabled, Feed: b.Feed, ModifyIndex: b.ModifyIndex,
			})
		}
		return true
	})
	return http.StatusOK, resp, nil
}

type bulletinResponse struct {
	Version  uint64          `json:"version"`
	Bulletin *store.Bulletin `json:"bulletin"`
	Updates  []*store.Update `json:"updates"`
}

func (s *Server) getBulletin(r *http.Request) (int, any, error) {
	id := mux.Vars(r)["id"]
	view, err := s.backend.State().CatalogView(nil)
	if err != nil {
		return 0, nil, err
	}
	b := view.Bulletin(id)
	if b == nil {
		return 0, nil, fmt.Errorf("bulletin %q: %w", id, store.ErrNotFound)
	}
	resp := bulletinResponse{Version: view.Info.Version, Bulletin: b, Updates: []*store.Update{}}
	for _, uid := range b.UpdateIDs {
		if u := view.Update(uid); u != nil {
			resp.Updates = append(resp.Updates, u)
		}
	}
	return http.StatusOK, resp, nil
}

// bulletinPatch is the body of PATCH /v1/catalog/bulletins/{id}.
type bulletinPatch struct {
	Disabled       *bool   `json:"disabled"`
	CustomSeverity *string `json:"custom_severity"`
}

func (s *Server) patchBulletin(r *http.Request) (int, any, error) {
	var req bulletinPatch
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Disabled == nil && req.CustomSeverity == nil {
		return 0, nil, fmt.Errorf(`%w: nothing to change: give "disabled" and/or "custom_severity"`, ErrBadRequest)
	}
	return s.setBulletinAdmin(r, mux.Vars(r)["id"], req.CustomSeverity, req.Disabled)
}

func (s *Server) putCustomSeverity(r *http.Request) (int, any, error) {
	var req struct {
		Severity *string `json:"severity"`
	}
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Severity == nil {
		return 0, nil, fmt.Errorf(`%w: field "severity" is required (a custom severity level, or "" to clear)`, ErrBadRequest)
	}
	return s.setBulletinAdmin(r, mux.Vars(r)["id"], req.Severity, nil)
}

func (s *Server) setBulletinAdmin(r *http.Request, id string, sev *string, disabled *bool) (int, any, error) {
	if err := s.requireParent("changing a bulletin"); err != nil && !s.opts.TestHooks {
		return 0, nil, err
	}
	idx, err := s.backend.SetBulletinAdmin(actor(r), id, sev, disabled)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}

type severitiesResponse struct {
	Levels []*store.SeverityLevel `json:"levels"`
}

func (s *Server) listSeverities(r *http.Request) (int, any, error) {
	levels, err := s.backend.State().SeverityLevels(nil)
	if err != nil {
		return 0, nil, err
	}
	if levels == nil {
		levels = []*store.SeverityLevel{}
	}
	return http.StatusOK, severitiesResponse{Levels: levels}, nil
}

func (s *Server) changeSeverities(r *http.Request, c store.SeverityChange) (int, any, error) {
	if err := s.requireParent("changing custom severity levels"); err != nil {
		return 0, nil, err
	}
	idx, err := s.backend.ChangeSeverityLevels(actor(r), c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, indexResponse{Index: idx}, nil
}

func (s *Server) addSeverity(r *http.Request) (int, any, error) {
	var req struct {
		Name     string `json:"name"`
		Position *int   `json:"position"`
	}
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Name == "" {
		return 0, nil, fmt.Errorf(`%w: field "name" is required`, ErrBadRequest)
	}
	return s.changeSeverities(r, store.SeverityChange{Op: "add", Name: req.Name, Position: req.Position})
}

func (s *Server) setSeverities(r *http.Request) (int, any, error) {
	var req struct {
		Levels *[]string `json:"levels"`
	}
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Levels == nil {
		return 0, nil, fmt.Errorf(`%w: field "levels" is required (every level, most severe first)`, ErrBadRequest)
	}
	return s.changeSeverities(r, store.SeverityChange{Op: "set", Names: *req.Levels})
}

func (s *Server) deleteSeverity(r *http.Request) (int, any, error) {
	return s.changeSeverities(r, store.SeverityChange{Op: "delete", Name: mux.Vars(r)["name"]})
}
