package node

import (
	"patchtree/store"
)

// StageCatalog stages one batch of an import run's changes (leader only).
func (n *Node) StageCatalog(runID string, b *store.CatalogBatch) error {
	raw, err := store.EncodeBatch(b)
	if err != nil {
		return err
	}
	_, err = n.apply(CatalogStageRequestType, &CatalogStageRequest{RunID: runID, Batch: raw})
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

// ChangeSeverityLevels changes the custom severity levels.
func (n *Node) ChangeSeverityLevels(c store.SeverityChange) (uint64, error) {
	return n.apply(SeverityChangeRequestType, &SeverityChangeRequest{Change: c})
}

// SetBulletinAdmin sets a bulletin's custom severity and/or disabled flag.
func (n *Node) SetBulletinAdmin(id string, customSeverity *string, disabled *bool) (uint64, error) {
	return n.apply(BulletinAdminRequestType, &BulletinAdminRequest{ID: id, CustomSeverity: customSeverity, Disabled: disabled})
}
