package importer

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"patchtree/langalert"
	"patchtree/store"
)

// collector keeps what an import needs from a feed as it streams by: every bulletin (their
// update lists decide what is kept) and only the updates in the site's languages.
type collector struct {
	ranges  []string
	include map[string]bool
	exclude map[string]bool

	bulletins   []*store.BulletinContent
	bulletinIdx map[string]int
	updates     map[string]*store.UpdateContent // kept on their language, not streamed
	// allUpdates has every update id of the feed, kept or not. A streamed update's value is
	// 1 + the index of its lower-case language tag in tags; the others' is 0.
	allUpdates  map[string]uint16
	tags        []string
	skippedLang int
	badTags     map[string]int
	// languages caches the verdict on each language tag: a feed has a few dozen tags on
	// hundreds of thousands of updates, and checking one is a BCP 47 parse and a range match.
	languages map[string]languageVerdict
	stream    *updateStream
	streamed  int
}

type languageVerdict struct {
	wellFormed, managed bool
	tag                 uint16 // 1 + the index in tags of the lower-case tag (managed, cached languages)
}

// updateStream turns kept updates into rows as the feed is parsed (streamUpdates).
type updateStream struct {
	p    *plan
	view *store.CatalogView
	feed string // the feed's name, once its header field is parsed: updates before it are collected
	emit func(sized) error
}

func newCollector(ranges []string, req *Request) *collector {
	c := &collector{
		ranges: ranges, bulletinIdx: map[string]int{}, updates: map[string]*store.UpdateContent{},
		allUpdates: map[string]uint16{}, badTags: map[string]int{}, languages: map[string]languageVerdict{},
	}
	c.include, c.exclude = foldSet(req.IncludeVendors), foldSet(req.ExcludeVendors)
	return c
}

// streamable reports whether an import keeps an update on its language alone, so that its row
// can be made as soon as it is parsed: no vendor filter (a bulletin's vendor decides on its
// updates) and no supersedence (which needs every update).
func streamable(req *Request) bool {
	return len(req.IncludeVendors) == 0 && len(req.ExcludeVendors) == 0 && !req.DisableSuperseded
}

// streamUpdates makes c turn each kept update into its row of p, diffed against view and sent
// to emit, as it is parsed: from the feed's name on (FeedName), the plan's update rows are made
// and staged while the feed is still being read. Only for streamable requests.
func (c *collector) streamUpdates(p *plan, view *store.CatalogView, emit func(sized) error) {
	c.stream = &updateStream{p: p, view: view, emit: emit}
}

// FeedName is the feed's name from its header, which a streamed update's row carries.
func (c *collector) FeedName(name string) error {
	if s := c.stream; s != nil {
		if s.feed != "" && s.feed != name {
			return errors.New("the feed names itself twice, differently")
		}
		s.feed = name
	}
	return nil
}

// maxCachedLanguages bounds the language cache: a feed of random tags gets no cache, not an
// unbounded one.
const maxCachedLanguages = 4096

func foldSet(in []string) map[string]bool {
	if len(in) == 0 {
		return nil
	}
	m := map[string]bool{}
	for _, s := range in {
		m[strings.ToLower(strings.TrimSpace(s))] = true
	}
	return m
}

// Bulletin records a bulletin; a later one with the same id (a revised CSAF document in the same
// run) replaces the earlier.
func (c *collector) Bulletin(b *store.BulletinContent) error {
	if i, ok := c.bulletinIdx[b.ID]; ok {
		c.bulletins[i] = b
		return nil
	}
	c.bulletinIdx[b.ID] = len(c.bulletins)
	c.bulletins = append(c.bulletins, b)
	return nil
}

// Update keeps an update if its language is managed here; others are only counted. A streamed
// update becomes its row at once.
func (c *collector) Update(u *store.UpdateContent) error {
	c.allUpdates[u.ID] = 0
	v := c.language(u.Language)
	if !v.wellFormed {
		c.badTags[u.Language]++
	}
	if !v.managed {
		c.skippedLang++
		return nil
	}
	if s := c.stream; s != nil && s.feed != "" && v.tag > 0 {
		c.allUpdates[u.ID] = v.tag
		c.streamed++
		return s.p.planUpdate(s.view, u, s.feed, false, s.emit)
	}
	c.updates[u.ID] = u // planned after the parse: before the feed's name, or past the cache's bound
	return nil
}

// language is the verdict on a language tag, cached up to maxCachedLanguages tags; a managed,
// cached tag has its one lower-case copy in tags.
func (c *collector) language(lang string) languageVerdict {
	if v, ok := c.languages[lang]; ok {
		return v
	}
	v := languageVerdict{
		wellFormed: lang == "" || langalert.CheckTag(lang) == nil,
		managed:    langalert.MatchAny(c.ranges, lang),
	}
	if len(c.languages) < maxCachedLanguages {
		if v.managed {
			c.tags = append(c.tags, strings.ToLower(lang))
			v.tag = uint16(len(c.tags))
		}
		c.languages[lang] = v
	}
	return v
}

// lowerTag is a kept update's language in lower case: one string per distinct tag, since a 500k
// feed's bulletins list 2.7 million update ids in some 30 languages.
func (c *collector) lowerTag(lang string) string {
	if v := c.languages[lang]; v.tag > 0 {
		return c.tags[v.tag-1]
	}
	return strings.ToLower(lang) // past the cache's bound
}

// streamedTag is the lower-case language tag of a streamed update, and whether id is one.
func (c *collector) streamedTag(id string) (string, bool) {
	if t := c.allUpdates[id]; t > 0 {
		return c.tags[t-1], true
	}
	return "", false
}

// planUpdate makes u's row, diffs it against the view and sends it to emit if it must be
// written.
func (p *plan) planUpdate(view *store.CatalogView, u *store.UpdateContent, feed string, superseded bool, emit func(sized) error) error {
	row := &store.Update{UpdateContent: *u, Feed: feed, Superseded: superseded}
	size := hashUpdateRow(row)
	live := view.Update(u.ID)
	if !p.classify(live != nil, live != nil && live.Feed != feed, live != nil && live.Hash == row.Hash, &p.result.Updates, "update", u.ID, liveFeedU(live)) {
		return nil
	}
	return emit(sized{update: row, size: size})
}

func (c *collector) vendorKept(vendor string) bool {
	v := strings.ToLower(vendor)
	if c.include != nil && !c.include[v] {
		return false
	}
	return !c.exclude[v]
}

// rowSize estimates a row's encoded size for batching.
type sized struct {
	bulletin *store.Bulletin
	update   *store.Update
	size     int
}

// plan is what an import will change, computed against a consistent view of the catalog. Its
// rows go to the emit function of makePlan as they are made; the rest is complete when
// makePlan returns.
type plan struct {
	deleteBulletins []string
	deleteUpdates   []string
	result          store.ImportResult
}

// planOptions are the rules for removals.
type planOptions struct {
	feed string
	// removeMissing: records of the feed that the feed no longer has are removed (a native feed is
	// always whole; a CSAF provider only in complete mode).
	removeMissing     bool
	deleteExcluded    bool
	disableSuperseded bool
	// delivered are the bulletins a partial (incremental CSAF) run re-delivered: their former
	// updates that are gone are removed even without removeMissing.
	delivered map[string]bool
}

// makePlan filters the collected feed to what this site keeps, diffs it against the view and
// completes p: each row to write goes to emit as soon as it is made (bulletins, then the
// collected updates in id order; streamed updates were planned as they were parsed, into the
// same p); removals, counts and warnings are in p when it returns. An error of emit stops it.
// It uses the collector up: call it once.
func (c *collector) makePlan(p *plan, view *store.CatalogView, o planOptions, emit func(sized) error) error {
	res := &p.result
	// Sized up front: at 500,000 updates growing these maps was a third of the plan's time.
	inFeedB := make(map[string]bool, len(c.bulletins))
	keptU := make(map[string]bool, len(c.updates)) // the kept updates that were not streamed
	// Which collected updates a bulletin names: streamed updates are kept whatever names them,
	// and when every kept update was streamed the 2.7 million references of a 500k feed need
	// no map.
	var referenced map[string]bool
	if len(c.updates) > 0 {
		referenced = make(map[string]bool, len(c.allUpdates))
	}
	keptB := make([]*store.BulletinContent, 0, len(c.bulletins))
	tags := make(map[string][]string, len(c.bulletins)) // kept bulletin → lower-case tags of its kept updates
	for _, b := range c.bulletins {
		inFeedB[b.ID] = true
		if referenced != nil {
			for _, u := range b.UpdateIDs {
				referenced[u] = true
			}
		}
		if !c.vendorKept(b.Vendor) {
			res.SkippedBulletins++
			continue
		}
		kb := *b
		kb.UpdateIDs = nil
		kt := make([]string, 0, len(b.UpdateIDs))
		for _, u := range b.UpdateIDs {
			if tag, ok := c.streamedTag(u); ok {
				kb.UpdateIDs = append(kb.UpdateIDs, u)
				kt = append(kt, tag)
			} else if up, ok := c.updates[u]; ok {
				kb.UpdateIDs = append(kb.UpdateIDs, u)
				kt = append(kt, c.lowerTag(up.Language))
				keptU[u] = true
			}
		}
		if len(kb.UpdateIDs) == len(b.UpdateIDs) {
			kb.UpdateIDs = b.UpdateIDs // every update kept: share the feed's list (read-only)
		}
		tags[b.ID] = kt
		if len(kb.UpdateIDs) == 0 {
			res.SkippedBulletins++
			continue
		}
		keptB = append(keptB, &kb)
	}
	for id := range c.updates {
		if !referenced[id] {
			keptU[id] = true // an update no bulletin names is kept on its language alone
		}
	}
	res.SkippedUpdates = len(c.allUpdates) - len(keptU) - c.streamed

	superseded := map[string]bool{}
	if o.disableSuperseded {
		for id := range keptU {
			for _, s := range c.updates[id].Supersedes {
				superseded[s] = true
			}
		}
	}

	for _, b := range keptB {
		row := &store.Bulletin{BulletinContent: *b, UpdateTags: tags[b.ID], Feed: o.feed}
		size := hashBulletinRow(row)
		live := view.Bulletin(b.ID)
		if !p.classify(live != nil, live != nil && live.Feed != o.feed, live != nil && live.Hash == row.Hash, &res.Bulletins, "bulletin", b.ID, liveFeedB(live)) {
			continue
		}
		if err := emit(sized{bulletin: row, size: size}); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(keptU))
	for id := range keptU {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		u := c.updates[id]
		delete(c.updates, id) // its row copies it: the collected one is garbage from here on
		if err := p.planUpdate(view, u, o.feed, superseded[id], emit); err != nil {
			return err
		}
	}

	// Removals: records of this feed that the site keeps no longer.
	keptBIDs := map[string]bool{}
	for _, b := range keptB {
		keptBIDs[b.ID] = true
	}
	err := view.FeedBulletins(o.feed, func(b *store.Bulletin) bool {
		if keptBIDs[b.ID] {
			return true
		}
		if (inFeedB[b.ID] && o.deleteExcluded) || (!inFeedB[b.ID] && o.removeMissing) {
			p.deleteBulletins = append(p.deleteBulletins, b.ID)
			res.Bulletins.Removed++
		}
		return true
	})
	if err != nil {
		return err
	}
	err = view.FeedUpdates(o.feed, func(u *store.Update) bool {
		if _, streamed := c.streamedTag(u.ID); streamed || keptU[u.ID] {
			return true
		}
		_, inFeed := c.allUpdates[u.ID]
		gone := !inFeed && (o.removeMissing || o.delivered[bulletinOfFixID(u.ID)])
		if (inFeed && o.deleteExcluded) || gone {
			p.deleteUpdates = append(p.deleteUpdates, u.ID)
			res.Updates.Removed++
		}
		return true
	})
	if err != nil {
		return err
	}
	for tag, n := range c.badTags {
		res.Warnings = append(res.Warnings, fmt.Sprintf("language tag %q is not well-formed BCP 47; kept verbatim on %d updates", tag, n))
	}
	sort.Strings(res.Warnings)
	return nil
}

// classify counts one record and reports whether it must be written.
func (p *plan) classify(exists, foreign, same bool, counts *store.ImportCounts, kind, id, liveFeed string) bool {
	switch {
	case foreign:
		p.result.Warnings = append(p.result.Warnings, fmt.Sprintf("%s %q belongs to feed %q; this feed's copy was skipped", kind, id, liveFeed))
		return false
	case !exists:
		counts.Added++
	case same:
		counts.Unchanged++
		return false
	default:
		counts.Changed++
	}
	return true
}

func liveFeedB(b *store.Bulletin) string {
	if b == nil {
		return ""
	}
	return b.Feed
}

func liveFeedU(u *store.Update) string {
	if u == nil {
		return ""
	}
	return u.Feed
}

// bulletinOfFixID maps a CSAF update id ("<tracking id>/fix-1") to its bulletin.
func bulletinOfFixID(id string) string {
	if i := strings.LastIndexByte(id, '/'); i > 0 {
		return id[:i]
	}
	return ""
}
