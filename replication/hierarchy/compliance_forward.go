package hierarchy

// Compliance across tiers, the relay's side: its summary report lists every site below it whose
// summary it holds, each with its own sequence, digest, as_of and staleness, and carries the
// summaries its parent does not hold yet (docs/compliance.md, "Across tiers").

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"patchtree/replication/compliance"
	"patchtree/store"
)

// maxForwardRounds bounds the reports one firing sends after the first to carry the summaries
// the parent asked for (each carries as many as fit MaxSummaryBytes).
const maxForwardRounds = 64

// forwardSlack is the room a report keeps, besides its own summary and subtree list, under the
// parent's limit on a report (compliance.MaxSummaryBytes) for the report's other fields.
const forwardSlack = 64 << 10

// forwardState is what a relay's summary loop remembers between firings: the sequence and
// digest of each path its parent holds, as learned from the parent's answers, and the key of
// the subtree it last reported. A new leader starts without: its first report lists the subtree
// without summaries, and the parent's answer says which it wants.
type forwardState struct {
	known bool
	held  map[string]string // path → heldKey
	sent  string            // subtreeKey of the subtree last reported
}

func heldKey(seq uint64, digest string) string { return strconv.FormatUint(seq, 10) + ":" + digest }

// unheld selects, for a firing's first report, the paths whose summary the parent is not known
// to hold; nothing before any answer.
func (f *forwardState) unheld() func(*subtreeEntry) bool {
	if !f.known {
		return func(*subtreeEntry) bool { return false }
	}
	return func(e *subtreeEntry) bool { return f.held[e.Path] != heldKey(e.Seq, e.Digest) }
}

// learn records an accepted answer to a report that listed below: the parent holds every
// listed path it does not want (stored, refused, or newer there: none is sent again until its
// sequence changes).
func (f *forwardState) learn(below []subtreeEntry, ans *SummaryAnswer) {
	want := make(map[string]bool, len(ans.Want))
	for _, p := range ans.Want {
		want[p] = true
	}
	f.held = make(map[string]string, len(below))
	for i := range below {
		if e := &below[i]; !want[e.Path] {
			f.held[e.Path] = heldKey(e.Seq, e.Digest)
		}
	}
	f.known = true
}

// subtreeEntry is one site below this relay, ready to forward: its list entry (without the
// summary), its path below this site, and its summary as stored here (compressed).
type subtreeEntry struct {
	ForwardedSummary
	rel    string
	stored []byte
}

// collectSubtree lists the sites below this one whose summaries it holds: each enrolled child's
// newest summary, then what that child forwarded of the sites below it, by path. Paths start
// with self, this site's name at its parent ("" leaves them relative to this site). A child
// removed here is left out with its subtree, so its parent drops them too. Each entry is stale
// when it or a site between it and this one is stale now. logger may be nil.
func collectSubtree(t *store.SummaryTree, self string, now time.Time, logger *slog.Logger) []subtreeEntry {
	enrolled := make(map[string]bool, len(t.Children))
	for _, c := range t.Children {
		enrolled[c.Name] = true
	}
	childStale := map[string]bool{}
	var out []subtreeEntry
	add := func(rel string, seq uint64, digest string, asOf, contact time.Time, interval time.Duration, stale bool, sum []byte) {
		path := rel
		if self != "" {
			path = self + "/" + rel
		}
		if len(path) > MaxSubtreePathBytes {
			if logger != nil {
				logger.Warn("a site below this one is too deep to forward its compliance summary", "path", path, "limit_bytes", MaxSubtreePathBytes)
			}
			return
		}
		out = append(out, subtreeEntry{rel: rel, stored: sum, ForwardedSummary: ForwardedSummary{Path: path, Seq: seq, Digest: digest,
			AsOf: asOf.UTC(), LastContact: contact.UTC(), Interval: interval.String(), Stale: stale}})
	}
	for _, cs := range t.Summaries {
		if !enrolled[cs.Child] || len(cs.Summary) == 0 {
			continue
		}
		st := compliance.Stale(cs.LastContact, cs.Interval, now)
		childStale[cs.Child] = st
		add(cs.Child, cs.Seq, cs.Digest, cs.AsOf, cs.LastContact, cs.Interval, st, cs.Summary)
	}
	for _, r := range t.Subtree {
		st, ok := childStale[r.Child]
		if !ok {
			continue // the child it came through is removed here
		}
		add(r.Path, r.Seq, r.Digest, r.AsOf, r.LastContact, r.Interval, r.Stale || st, r.Summary)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	if len(out) > MaxSubtreeSummaries {
		if logger != nil {
			logger.Warn("more sites below this one than a summary report lists; the rest are not forwarded",
				"sites", len(out), "limit", MaxSubtreeSummaries)
		}
		out = out[:MaxSubtreeSummaries]
	}
	return out
}

// subtreeKey identifies what a subtree list says about the summaries below this site (paths,
// sequences, digests; not contact times or staleness): "" for none.
func subtreeKey(below []subtreeEntry) string {
	if len(below) == 0 {
		return ""
	}
	h := sha256.New()
	for i := range below {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", below[i].rel, below[i].Seq, below[i].Digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// forwardBudget is how many bytes of forwarded summaries a report may carry besides its own
// summary (own bytes) and the subtree list, under compliance.MaxSummaryBytes.
func forwardBudget(own int, below []subtreeEntry) int {
	list := 0
	for i := range below {
		list += len(below[i].Path) + len(below[i].Digest) + 200
	}
	return compliance.MaxSummaryBytes - forwardSlack - own - list
}

// forwardList is the subtree list of a report: every entry of below, with the summaries of
// those sel selects as long as they fit budget bytes.
func forwardList(below []subtreeEntry, sel func(*subtreeEntry) bool, budget int) ([]ForwardedSummary, error) {
	if len(below) == 0 {
		return nil, nil
	}
	out := make([]ForwardedSummary, len(below))
	for i := range below {
		e := &below[i]
		out[i] = e.ForwardedSummary
		if !sel(e) {
			continue
		}
		raw, err := compliance.DecompressStored(e.stored)
		if err != nil {
			return nil, fmt.Errorf("summary of %s: %w", e.Path, err)
		}
		if len(raw) <= budget {
			out[i].Summary = raw
			budget -= len(raw)
		}
	}
	return out, nil
}

func countSummaries(list []ForwardedSummary) int {
	n := 0
	for i := range list {
		if len(list[i].Summary) > 0 {
			n++
		}
	}
	return n
}

// forwardWanted sends, after an accepted report, the summaries its answer asks for: reports of
// this site's unchanged sequence with the subtree list, each carrying as many wanted summaries
// as fit, until the parent wants none (or wants no fewer than before).
func (c *Child) forwardWanted(ctx context.Context, link *Link, res *SummaryResult, ans *SummaryAnswer, below []subtreeEntry,
	fwd *forwardState, spec, trigger string) error {
	fwd.learn(below, ans)
	for round := 0; len(ans.Want) > 0; round++ {
		if round == maxForwardRounds {
			c.cfg.Logger.Warn("the parent still wants compliance summaries of sites below this one; the next firing sends them",
				"wanted", len(ans.Want))
			return nil
		}
		want := make(map[string]bool, len(ans.Want))
		for _, p := range ans.Want {
			want[p] = true
		}
		sub, err := forwardList(below, func(e *subtreeEntry) bool { return want[e.Path] }, forwardBudget(0, below))
		if err != nil {
			return err
		}
		n := countSummaries(sub)
		if n == 0 {
			c.cfg.Logger.Warn("the summaries the parent wants do not fit a report", "paths", ans.Want)
			return nil
		}
		next, wire, raw, err := c.postSummary(ctx, link, SummaryReport{Child: link.Child, Seq: res.Seq, Digest: res.Digest,
			Trigger: trigger, Interval: spec, Unchanged: true, Subtree: sub})
		if err != nil {
			return fmt.Errorf("forward the compliance summaries below this site: %w", err)
		}
		res.BytesWire, res.BytesRaw, res.Forwarded = res.BytesWire+wire, res.BytesRaw+raw, res.Forwarded+n
		if !next.Accepted {
			return nil // another report of this site went first; the next firing lists the subtree again
		}
		fwd.learn(below, next)
		if len(next.Want) >= len(ans.Want) {
			c.cfg.Logger.Warn("the parent keeps asking for the same compliance summaries", "paths", next.Want)
			return nil
		}
		ans = next
	}
	c.cfg.Logger.Info("compliance summaries below this site forwarded", "sites", len(below), "forwarded", res.Forwarded)
	return nil
}
