package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	updates     map[string]*store.UpdateContent
	allUpdates  map[string]struct{} // every update id the feed has, kept or not
	skippedLang int
	badTags     map[string]int
}

func newCollector(ranges []string, req *Request) *collector {
	c := &collector{
		ranges: ranges, bulletinIdx: map[string]int{}, updates: map[string]*store.UpdateContent{},
		allUpdates: map[string]struct{}{}, badTags: map[string]int{},
	}
	c.include, c.exclude = foldSet(req.IncludeVendors), foldSet(req.ExcludeVendors)
	return c
}

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

// Update keeps an update if its language is managed here; others are only counted.
func (c *collector) Update(u *store.UpdateContent) error {
	c.allUpdates[u.ID] = struct{}{}
	if u.Language != "" && langalert.CheckTag(u.Language) != nil {
		c.badTags[u.Language]++
	}
	if !langalert.MatchAny(c.ranges, u.Language) {
		c.skippedLang++
		return nil
	}
	c.updates[u.ID] = u
	return nil
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

// plan is what an import will change, computed against a consistent view of the catalog.
type plan struct {
	rows            []sized
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

// makePlan filters the collected feed to what this site keeps and diffs it against the view. It
// uses the collector up: call it once.
func (c *collector) makePlan(view *store.CatalogView, o planOptions) (*plan, error) {
	p := &plan{}
	res := &p.result
	// Sized up front: at 500,000 updates growing these maps was a third of the plan's time.
	inFeedB := make(map[string]bool, len(c.bulletins))
	keptU := make(map[string]bool, len(c.updates))
	referenced := make(map[string]bool, len(c.allUpdates))
	keptB := make([]*store.BulletinContent, 0, len(c.bulletins))
	tags := make(map[string][]string, len(c.bulletins)) // kept bulletin → lower-case tags of its kept updates
	// One lower-case string per distinct tag: a 500k feed's bulletins list 2.7 million update ids
	// in some 30 languages.
	lowered := map[string]string{}
	lowerTag := func(tag string) string {
		if l, ok := lowered[tag]; ok {
			return l
		}
		l := strings.ToLower(tag)
		lowered[tag] = l
		return l
	}
	for _, b := range c.bulletins {
		inFeedB[b.ID] = true
		for _, u := range b.UpdateIDs {
			referenced[u] = true
		}
		if !c.vendorKept(b.Vendor) {
			res.SkippedBulletins++
			continue
		}
		kb := *b
		kb.UpdateIDs = nil
		kt := make([]string, 0, len(b.UpdateIDs))
		for _, u := range b.UpdateIDs {
			if up, ok := c.updates[u]; ok {
				kb.UpdateIDs = append(kb.UpdateIDs, u)
				kt = append(kt, lowerTag(up.Language))
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
	res.SkippedUpdates = len(c.allUpdates) - len(keptU)

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
		size, err := hashRow(&row.Hash, struct {
			C *store.BulletinContent
			T []string
			F string
		}{b, row.UpdateTags, o.feed})
		if err != nil {
			return nil, err
		}
		live := view.Bulletin(b.ID)
		if !p.classify(live != nil, live != nil && live.Feed != o.feed, live != nil && live.Hash == row.Hash, &res.Bulletins, "bulletin", b.ID, liveFeedB(live)) {
			continue
		}
		p.rows = append(p.rows, sized{bulletin: row, size: size})
	}
	ids := make([]string, 0, len(keptU))
	for id := range keptU {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		u := c.updates[id]
		delete(c.updates, id) // the row below copies it: the collected one is garbage from here on
		row := &store.Update{UpdateContent: *u, Feed: o.feed, Superseded: superseded[id]}
		size, err := hashRow(&row.Hash, struct {
			C *store.UpdateContent
			F string
			S bool
		}{u, o.feed, row.Superseded})
		if err != nil {
			return nil, err
		}
		live := view.Update(id)
		if !p.classify(live != nil, live != nil && live.Feed != o.feed, live != nil && live.Hash == row.Hash, &res.Updates, "update", id, liveFeedU(live)) {
			continue
		}
		p.rows = append(p.rows, sized{update: row, size: size})
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
		return nil, err
	}
	err = view.FeedUpdates(o.feed, func(u *store.Update) bool {
		if keptU[u.ID] {
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
		return nil, err
	}
	for tag, n := range c.badTags {
		res.Warnings = append(res.Warnings, fmt.Sprintf("language tag %q is not well-formed BCP 47; kept verbatim on %d updates", tag, n))
	}
	sort.Strings(res.Warnings)
	return p, nil
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

// hashRow stores the hex SHA-256 of v's JSON in dst and returns the JSON's length.
func hashRow(dst *string, v any) (int, error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode record: %w", err)
	}
	sum := sha256.Sum256(buf)
	*dst = hex.EncodeToString(sum[:])
	return len(buf), nil
}

// batcher cuts a plan into batches of at most maxBytes (estimated) and maxRows index entries
// (a record counts once, a bulletin once more per update it lists), deletions last, one at a time: each row leaves the plan as its batch is cut, so a row is held
// either by the plan or by the one batch being staged.
type batcher struct {
	p                 *plan
	maxBytes, maxRows int
	row, delB, delU   int
}

func (p *plan) batcher(maxBytes, maxRows int) *batcher {
	return &batcher{p: p, maxBytes: maxBytes, maxRows: maxRows}
}

// next returns the next batch, or nil when the plan is used up.
func (bt *batcher) next() *store.CatalogBatch {
	p := bt.p
	cur := &store.CatalogBatch{Tombstones: true} // children learn of deletions through tombstones
	size, rows := 0, 0
	fits := func(n, cost int) bool {
		if rows > 0 && (size+n > bt.maxBytes || rows+cost > bt.maxRows) {
			return false
		}
		size, rows = size+n, rows+cost
		return true
	}
	for ; bt.row < len(p.rows); bt.row++ {
		r := p.rows[bt.row]
		// One record costs one row in each of its table's two trees; what a bulletin's update
		// list costs (its tag digests) is in its bytes.
		if !fits(r.size+160, 1) { // row JSON plus feed, hash and indexes
			return cur
		}
		if r.bulletin != nil {
			cur.Bulletins = append(cur.Bulletins, r.bulletin)
		} else {
			cur.Updates = append(cur.Updates, r.update)
		}
		p.rows[bt.row] = sized{}
	}
	for ; bt.delB < len(p.deleteBulletins); bt.delB++ {
		id := p.deleteBulletins[bt.delB]
		if !fits(len(id)+4, 1) {
			return cur
		}
		cur.DeleteBulletins = append(cur.DeleteBulletins, id)
	}
	for ; bt.delU < len(p.deleteUpdates); bt.delU++ {
		id := p.deleteUpdates[bt.delU]
		if !fits(len(id)+4, 1) {
			return cur
		}
		cur.DeleteUpdates = append(cur.DeleteUpdates, id)
	}
	if rows == 0 {
		return nil
	}
	return cur
}
