package hierarchy

// What a site below the root keeps of the tree above it, and what a relay does with a run once
// its parent recorded it: the parts of the run that concern the relay's own children.

import (
	"net/http"
	"net/url"
	"strings"
)

// RootRangesHeader carries the root's ranges on a pull's empty answer.
const RootRangesHeader = "X-Patchtree-Root-Ranges"

// RootRanges are the root's ranges as this site knows them (nil: not known yet).
func (p *Parent) RootRanges() ([]string, error) {
	pos, err := p.position(nil)
	if err != nil || !pos.known {
		return nil, err
	}
	return pos.root, nil
}

// addRootRanges adds the root's ranges this site last heard to a pull, so that the parent
// answers at once when they changed.
func (c *Child) addRootRanges(q url.Values) {
	up, err := loadUpstream(c.backend.State(), nil)
	if err != nil {
		// The pull goes without them: the parent then never answers early for a change of
		// the root's ranges, and the next report learns them.
		c.cfg.Logger.Warn("read the upstream setting for a pull", "error", err)
		return
	}
	if up != nil {
		q.Set("root", strings.Join(up.RootRanges, ","))
	}
}

// checkRootRanges asks for a language report when an empty answer to a pull carries root
// ranges other than the ones this site heard: the report's answer updates them.
func (c *Child) checkRootRanges(resp *http.Response) {
	raw, ok := resp.Header[http.CanonicalHeaderKey(RootRangesHeader)]
	if !ok || len(raw) == 0 {
		return
	}
	up, err := loadUpstream(c.backend.State(), nil)
	if err != nil {
		c.cfg.Logger.Warn("read the upstream setting", "error", err)
		return
	}
	if up != nil && sameRanges(up.RootRanges, splitList(raw[0])) {
		return
	}
	select {
	case c.report <- struct{}{}:
	default:
	}
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// afterRun runs after the parent recorded this site's acknowledgement of a run.
func (c *Child) afterRun(h RunHeader, verified bool) {
	if !verified {
		return // the parent repairs it with another run, which carries the request again
	}
	c.passOn(h)
}

// passOn hands a replicate-now request that came down with a verified run on to this site's
// own children, so that it reaches every depth. A site without children has nothing to do.
func (c *Child) passOn(h RunHeader) {
	down := c.cfg.Downstream
	if h.Cascade == nil || down == nil {
		return
	}
	cas := *h.Cascade
	targeted, err := down.ReplicateNow(NowRequest{Scope: cas.Scope, Mode: cas.Mode, Policy: cas.Policy, Folder: cas.Folder,
		Reason: "replicate-now", Cascade: &cas})
	if err != nil {
		c.cfg.Logger.Warn("pass a replicate-now on to this site's children", "cascade", cas.ID, "error", err)
		return
	}
	if len(targeted) > 0 { // a site without children has nothing to pass on
		c.cfg.Logger.Info("passed a replicate-now on to this site's children", "cascade", cas.ID, "children", targeted)
	}
}
