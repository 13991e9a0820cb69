// Package policy builds and validates software update policies and settings documents against
// a site's catalog, and filters them to a child's languages for replication.
package policy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"patchtree/langalert"
	"patchtree/store"
)

// DefaultFolder is the folder of a policy created without one.
const DefaultFolder = "Default"

// UpdateFlag sets one update's enabled flag in a request.
type UpdateFlag struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
}

// Input is the body of POST /v1/policies and PATCH /v1/policies/{id}: nil fields are unset (a
// PATCH keeps them, a create takes the default).
type Input struct {
	Name                      *string      `json:"name"`
	Description               *string      `json:"description"`
	Folder                    *string      `json:"folder"`
	Bulletins                 []string     `json:"bulletins"`
	Updates                   []UpdateFlag `json:"updates"`
	Enabled                   *bool        `json:"enabled"`
	Run                       *string      `json:"run"`
	OverrideMaintenanceWindow *bool        `json:"override_maintenance_windows"`
	AllowImmediateRestart     *bool        `json:"allow_immediate_restart"`
	ReplicateNow              bool         `json:"replicate_now"`
}

// NewID returns a new policy id.
func NewID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "p-" + hex.EncodeToString(b)
}

// Create builds a new local policy from in, validated against the catalog view.
func Create(v *store.CatalogView, id string, in Input, now time.Time, by string) (*store.Policy, error) {
	if len(in.Bulletins) == 0 {
		return nil, fmt.Errorf("a policy needs at least one bulletin (field \"bulletins\"): %w", store.ErrInvalid)
	}
	p := &store.Policy{Origin: store.OriginLocal, PolicySpec: store.PolicySpec{
		ID: id, Folder: DefaultFolder, Enabled: true, Run: store.RunAgentDefault, Revision: 1,
		CreatedAt: now, UpdatedAt: now, CreatedBy: by, UpdatedBy: by,
	}}
	if err := apply(v, p, in, true); err != nil {
		return nil, err
	}
	return p, nil
}

// Patch applies in to a copy of an existing policy.
func Patch(v *store.CatalogView, old *store.Policy, in Input, now time.Time, by string) (*store.Policy, error) {
	p := *old
	p.Bulletins = append([]string{}, old.Bulletins...)
	p.Updates = append([]store.PolicyUpdate{}, old.Updates...)
	if err := apply(v, &p, in, false); err != nil {
		return nil, err
	}
	p.Revision++
	p.UpdatedAt, p.UpdatedBy = now, by
	return &p, nil
}

func apply(v *store.CatalogView, p *store.Policy, in Input, create bool) error {
	if in.Bulletins != nil {
		if len(in.Bulletins) == 0 {
			return fmt.Errorf("a policy needs at least one bulletin (field \"bulletins\"): %w", store.ErrInvalid)
		}
		if err := setBulletins(v, p, in.Bulletins); err != nil {
			return err
		}
	}
	if in.Updates != nil {
		// An update two of the policy's bulletins share appears once per bulletin: its flag
		// applies to every entry.
		idx := map[string][]int{}
		for i, u := range p.Updates {
			idx[u.ID] = append(idx[u.ID], i)
		}
		for _, f := range in.Updates {
			entries, ok := idx[f.ID]
			if !ok {
				return fmt.Errorf("update %q is not in the policy's bulletins %v: %w", f.ID, p.Bulletins, store.ErrInvalid)
			}
			for _, i := range entries {
				p.Updates[i].Enabled = f.Enabled
			}
		}
	}
	if in.Folder != nil {
		f := strings.Trim(strings.TrimSpace(*in.Folder), "/")
		if f == "" {
			f = DefaultFolder
		}
		if err := store.CheckName("folder", f); err != nil {
			return err
		}
		p.Folder = f
	}
	if in.Enabled != nil {
		p.Enabled = *in.Enabled
	}
	if in.Run != nil {
		run, err := ParseRun(*in.Run)
		if err != nil {
			return err
		}
		p.Run = run
	}
	if in.OverrideMaintenanceWindow != nil {
		p.OverrideMaintenanceWindow = *in.OverrideMaintenanceWindow
	}
	if in.AllowImmediateRestart != nil {
		p.AllowImmediateRestart = *in.AllowImmediateRestart
	}
	name, desc := defaults(v, p.Bulletins)
	switch {
	case in.Name != nil && strings.TrimSpace(*in.Name) != "":
		p.Name = strings.TrimSpace(*in.Name)
		if err := store.CheckName("policy", p.Name); err != nil {
			return err
		}
	case create || (in.Name != nil):
		p.Name = name
	}
	switch {
	case in.Description != nil:
		p.Description = *in.Description
	case create:
		p.Description = desc
	}
	if n := utf8.RuneCountInString(p.Name); n > 300 {
		return fmt.Errorf("name has %d characters, at most 300: %w", n, store.ErrInvalid)
	}
	if n := utf8.RuneCountInString(p.Description); n > 4000 {
		return fmt.Errorf("description has %d characters, at most 4000: %w", n, store.ErrInvalid)
	}
	return nil
}

// setBulletins replaces the policy's bulletins: each must exist and not be disabled. Updates of
// bulletins it keeps keep their flags; updates of new bulletins come enabled unless superseded.
func setBulletins(v *store.CatalogView, p *store.Policy, ids []string) error {
	old := map[[2]string]store.PolicyUpdate{}
	for _, u := range p.Updates {
		old[[2]string{u.Bulletin, u.ID}] = u
	}
	seen := map[string]bool{}
	var bulletins []string
	var updates []store.PolicyUpdate
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if seen[id] {
			continue
		}
		seen[id] = true
		b := v.Bulletin(id)
		switch {
		case b == nil:
			return fmt.Errorf("bulletin %q is not in the catalog: %w", id, store.ErrInvalid)
		case b.Disabled:
			return fmt.Errorf("bulletin %q is disabled; enable it before using it in a policy: %w", id, store.ErrInvalid)
		}
		bulletins = append(bulletins, id)
		for _, uid := range b.UpdateIDs {
			if prev, ok := old[[2]string{id, uid}]; ok {
				updates = append(updates, prev)
				continue
			}
			pu := store.PolicyUpdate{ID: uid, Bulletin: id, Enabled: true}
			if u := v.Update(uid); u != nil {
				pu.Language, pu.Enabled = u.Language, !u.Superseded
			}
			updates = append(updates, pu)
		}
	}
	p.Bulletins, p.Updates = bulletins, updates
	return nil
}

// defaults are the name and description a policy takes from its bulletins, as the product this
// replaces named them: one bulletin gives its id and title.
func defaults(v *store.CatalogView, bulletins []string) (name, desc string) {
	if len(bulletins) == 0 {
		return "", ""
	}
	name = bulletins[0]
	if len(bulletins) > 1 {
		name = fmt.Sprintf("%s and %d more", bulletins[0], len(bulletins)-1)
	}
	var titles []string
	for _, id := range bulletins {
		if b := v.Bulletin(id); b != nil && b.Title != "" {
			titles = append(titles, b.Title)
		}
	}
	desc = strings.Join(titles, "; ")
	if r := []rune(desc); len(r) > 1000 {
		desc = string(r[:997]) + "..."
	}
	return name, desc
}

// ParseRun validates a policy's run: "agent-default", "asap", "HH:MM" daily or an interval of at
// least a minute such as "4h".
func ParseRun(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", store.RunAgentDefault:
		return store.RunAgentDefault, nil
	case store.RunASAP:
		return s, nil
	}
	if t, err := time.Parse("15:04", s); err == nil {
		return t.Format("15:04"), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= time.Minute {
		return s, nil
	}
	return "", fmt.Errorf("run %q: want \"agent-default\", \"asap\", a daily time \"HH:MM\" or an interval of at least 1m such as \"4h\": %w", s, store.ErrInvalid)
}

// Filter is a policy as a child with these ranges receives it: the updates whose language the
// ranges match (language-neutral ones always), and the bulletins with at least one of them.
// Origin and indexes are the receiver's; ParentIndex carries the policy's ModifyIndex here.
func Filter(p *store.Policy, ranges []string) *store.Policy {
	out := &store.Policy{PolicySpec: p.PolicySpec, Origin: store.OriginParent, ParentIndex: p.ModifyIndex}
	out.Updates = []store.PolicyUpdate{}
	keep := map[string]bool{}
	for _, u := range p.Updates {
		if langalert.MatchAny(ranges, u.Language) {
			out.Updates = append(out.Updates, u)
			keep[u.Bulletin] = true
		}
	}
	out.Bulletins = []string{}
	for _, b := range p.Bulletins {
		if keep[b] {
			out.Bulletins = append(out.Bulletins, b)
		}
	}
	return out
}

// Digest sums the hashes of policies (already filtered) into one order-independent digest.
func Digest(ps []*store.Policy) string {
	var d store.Digest
	for _, p := range ps {
		d.Add(p.Hash())
	}
	return d.String()
}

// SettingsDigest sums the hashes of settings documents.
func SettingsDigest(docs []*store.SettingDoc) string {
	var d store.Digest
	for _, doc := range docs {
		d.Add(doc.Hash())
	}
	return d.String()
}

// Sort orders policies by folder, then name, then id.
func Sort(ps []*store.Policy) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Folder != b.Folder {
			return a.Folder < b.Folder
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
}
