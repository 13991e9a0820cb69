package hierarchy

// What a relay does with a run once its parent recorded it: the parts of the run that concern
// the relay's own children.

// afterRun runs after the parent recorded this site's acknowledgement of a run.
func (c *Child) afterRun(h RunHeader, verified bool) {
	if !verified {
		return
	}
	c.cfg.Logger.Debug("run recorded by the parent", "run", h.RunID, "trigger", h.Trigger)
}
