package node

import (
	"fmt"

	"patchtree/store"
)

// StageCatalog stages one batch of an import run's changes (leader only).
func (n *Node) StageCatalog(runID string, b *store.CatalogBatch) error {
	raw, err := store.EncodeBatch(b)
	if err != nil {
		return err
	}
	_, err = n.apply(CatalogStageRowsRequestType, &runBatchEntry{RunID: runID, Batch: raw})
	return err
}

// CommitCatalog makes a run's staged changes visible in one entry and records the run.
func (n *Node) CommitCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	return n.apply(CatalogCommitRequestType, &CatalogCommitRequest{Run: *run, Source: src})
}

// AbortCatalog drops a run's staged changes.
func (n *Node) AbortCatalog(runID string) error {
	_, err := n.apply(CatalogAbortRequestType, &CatalogAbortRequest{RunID: runID})
	return err
}

// ChangeSeverityLevels changes the custom severity levels, audited as by's
// (catalog.severities-set, catalog.severity-add or catalog.severity-delete).
func (n *Node) ChangeSeverityLevels(by store.Actor, c store.SeverityChange) (uint64, error) {
	action, target := "catalog.severities-set", "severities"
	switch c.Op {
	case "add":
		action, target = "catalog.severity-add", "severity "+c.Name
	case "delete":
		action, target = "catalog.severity-delete", "severity "+c.Name
	}
	_, idx, err := n.applyAudited(by, action, target, c, SeverityChangeRequestType, &SeverityChangeRequest{Change: c})
	return idx, err
}

// SetBulletinAdmin sets a bulletin's custom severity and/or disabled flag, audited as by's
// (catalog.bulletin-update).
func (n *Node) SetBulletinAdmin(by store.Actor, id string, customSeverity *string, disabled *bool) (uint64, error) {
	req := &BulletinAdminRequest{ID: id, CustomSeverity: customSeverity, Disabled: disabled}
	_, idx, err := n.applyAudited(by, "catalog.bulletin-update", "bulletin "+id,
		map[string]any{"custom_severity": customSeverity, "disabled": disabled}, BulletinAdminRequestType, req)
	return idx, err
}

// PublishCatalog stages batch b of a run and publishes it in one bounded entry (or, with a
// nil b, publishes the run's next staged batch), hidden from readers until SwitchCatalog, and
// reports how far the publish is.
func (n *Node) PublishCatalog(runID string, b *store.CatalogBatch) (*store.PublishProgress, error) {
	if b == nil {
		return n.publishStep(CatalogPublishRequestType, runID, &CatalogPublishRequest{RunID: runID})
	}
	raw, err := store.EncodeBatch(b)
	if err != nil {
		return nil, err
	}
	return n.publishStep(CatalogPublishRowsRequestType, runID, &runBatchEntry{RunID: runID, Batch: raw})
}

// UnpublishCatalog takes the last published batch of a run back out in one bounded entry.
func (n *Node) UnpublishCatalog(runID string) (*store.PublishProgress, error) {
	return n.publishStep(CatalogUnpublishRequestType, runID, &CatalogPublishRequest{RunID: runID})
}

func (n *Node) publishStep(t MessageType, runID string, req any) (*store.PublishProgress, error) {
	resp, _, err := n.applyResponse(t, req)
	if err != nil {
		return nil, err
	}
	prog, ok := resp.(*store.PublishProgress)
	if !ok {
		return nil, fmt.Errorf("%s of import %s: unexpected response %T", t, runID, resp)
	}
	return prog, nil
}

// SwitchCatalog makes the version a run published visible and records the run, in one small
// entry.
func (n *Node) SwitchCatalog(run *store.ImportRun, src *store.SourceState) (uint64, error) {
	return n.apply(CatalogSwitchRequestType, &CatalogCommitRequest{Run: *run, Source: src})
}
