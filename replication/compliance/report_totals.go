package compliance

// Pre-aggregated bulletin totals: the per-bulletin report across every site is the sum of every
// site's bulletin rows. The Reporter keeps that sum up to date as summaries change (subtracting
// a site's old summary, adding its new one), so the report across every site costs one pass
// over the bulletins, not over sites × bulletins.

// bulletinTotal is one bulletin's counts summed over the sites whose summary lists it.
type bulletinTotal struct {
	c     [4]int64
	sites int
}

// bulletinTotals are the bulletin rows of every cached summary, summed by bulletin.
type bulletinTotals map[string]*bulletinTotal

// add adds (sign 1) or removes (sign -1) one summary's bulletin rows.
func (t bulletinTotals) add(s *Summary, sign int64) {
	for _, bc := range s.Bulletins {
		bt := t[bc.ID]
		if bt == nil {
			bt = &bulletinTotal{}
			t[bc.ID] = bt
		}
		for i := range bt.c {
			bt.c[i] += sign * bc.C[i]
		}
		bt.sites += int(sign)
		if bt.sites == 0 {
			delete(t, bc.ID)
		}
	}
}

// snapshot copies the totals, for use after the Reporter's lock is released.
func (t bulletinTotals) snapshot() map[string]bulletinTotal {
	out := make(map[string]bulletinTotal, len(t))
	for id, bt := range t {
		out[id] = *bt
	}
	return out
}

// update replaces the cache with fresh and keeps the totals equal to the sum of its summaries:
// a summary no longer cached is removed, a new one added; one cached under the same key,
// sequence and digest is the same summary and left alone.
func (r *Reporter) update(fresh map[string]*cachedSummary) {
	for key, old := range r.cache {
		if cur := fresh[key]; cur != old {
			r.totals.add(old.sum, -1)
		}
	}
	for key, cur := range fresh {
		if old := r.cache[key]; cur != old {
			r.totals.add(cur.sum, 1)
		}
	}
	r.cache = fresh
}
