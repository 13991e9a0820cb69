package store

import (
	memdb "github.com/hashicorp/go-memdb"
)

// Table names.
const (
	tableIndex     = "index"
	tableTokens    = "tokens"
	tableSettings  = "settings"
	tableLanguages = "languages"
	tableServers   = "servers"

	tableBulletins  = "bulletins"
	tableUpdates    = "updates"
	tableSeverities = "severities"
	tableImports    = "imports"
	tableSources    = "sources"
	tableStaged     = "staged"
	tableChildren   = "children"
	tableRuns       = "replication_runs"
	tableTombstones = "tombstones"
	tableTagDigests = "tag_digests"

	tablePolicies    = "policies"
	tableAudit       = "audit"
	tableSettingDocs = "setting_docs"

	tableComputers          = "computers"
	tableScanUpdates        = "scan_updates"
	tableUpdateCompliance   = "update_compliance"
	tableBulletinCompliance = "bulletin_compliance"
	tableSiteCompliance     = "site_compliance"
	tableChildSummaries     = "child_summaries"
	tableSubtreeSummaries   = "subtree_summaries"
)

// tableDef describes one table: its memdb schema (nil for the row tables of catalog_rows.go),
// the byte that tags its rows in a snapshot, and a constructor for decoding a row. Snapshot
// bytes are append-only: they live in snapshots on disk and must never be renumbered or reused.
type tableDef struct {
	name   string
	snapID byte
	schema *memdb.TableSchema
	newRow func() any
}

// tables lists every table in snapshot and digest order. New tables are appended with a new
// snapID.
var tables = []tableDef{
	{name: tableIndex, snapID: 1, schema: idTable(tableIndex, "Key"), newRow: func() any { return new(IndexEntry) }},
	{name: tableTokens, snapID: 2, schema: idTable(tableTokens, "ID"), newRow: func() any { return new(Token) }},
	{name: tableSettings, snapID: 3, schema: idTable(tableSettings, "Key"), newRow: func() any { return new(Setting) }},
	{name: tableLanguages, snapID: 4, schema: idTable(tableLanguages, "ID"), newRow: func() any { return new(Languages) }},
	{name: tableServers, snapID: 5, schema: idTable(tableServers, "ID"), newRow: func() any { return new(Server) }},
	// The catalog's rows are rowSets (catalog_rows.go), not memdb tables: no schema.
	{name: tableBulletins, snapID: 6, newRow: func() any { return new(Bulletin) }},
	{name: tableUpdates, snapID: 7, newRow: func() any { return new(Update) }},
	{name: tableSeverities, snapID: 8, schema: idTable(tableSeverities, "Name"), newRow: func() any { return new(SeverityLevel) }},
	{name: tableImports, snapID: 9, schema: idTable(tableImports, "ID"), newRow: func() any { return new(ImportRun) }},
	{name: tableSources, snapID: 10, schema: idTable(tableSources, "ID"), newRow: func() any { return new(SourceState) }},
	{name: tableStaged, snapID: 11, schema: idTable(tableStaged, "Key"), newRow: func() any { return new(stagedBatch) }},
	{name: tableChildren, snapID: 12, schema: idTable(tableChildren, "Name"), newRow: func() any { return new(Child) }},
	{name: tableRuns, snapID: 13, schema: withIndexes(idTable(tableRuns, "ID"),
		&memdb.IndexSchema{Name: "child", Indexer: &memdb.StringFieldIndex{Field: "Child"}},
	), newRow: func() any { return new(ReplicationRun) }},
	{name: tableTombstones, snapID: 14, schema: withIndexes(idTable(tableTombstones, "Key"), modifyIndex("Index")),
		newRow: func() any { return new(Tombstone) }},
	{name: tableTagDigests, snapID: 15, schema: idTable(tableTagDigests, "Key"), newRow: func() any { return new(tagDigest) }},
	{name: tablePolicies, snapID: 16, schema: withIndexes(idTable(tablePolicies, "ID"),
		&memdb.IndexSchema{Name: "folder", Indexer: &memdb.StringFieldIndex{Field: "Folder"}, AllowMissing: true},
	), newRow: func() any { return new(Policy) }},
	{name: tableAudit, snapID: 17, schema: idTable(tableAudit, "Key"), newRow: func() any { return new(AuditEntry) }},
	{name: tableSettingDocs, snapID: 18, schema: idTable(tableSettingDocs, "Name"), newRow: func() any { return new(SettingDoc) }},
	{name: tableComputers, snapID: 19, schema: idTable(tableComputers, "ID"), newRow: func() any { return new(Computer) }},
	{name: tableScanUpdates, snapID: 20, schema: withIndexes(idTable(tableScanUpdates, "ID"),
		&memdb.IndexSchema{Name: "ord", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Ord"}},
	), newRow: func() any { return new(scanUpdate) }},
	{name: tableUpdateCompliance, snapID: 21, schema: idTable(tableUpdateCompliance, "UpdateID"), newRow: func() any { return new(UpdateCompliance) }},
	{name: tableBulletinCompliance, snapID: 22, schema: idTable(tableBulletinCompliance, "BulletinID"), newRow: func() any { return new(BulletinCompliance) }},
	{name: tableSiteCompliance, snapID: 23, schema: idTable(tableSiteCompliance, "Key"), newRow: func() any { return new(SiteCompliance) }},
	{name: tableChildSummaries, snapID: 24, schema: idTable(tableChildSummaries, "Child"), newRow: func() any { return new(ChildSummary) }},
	// A server from before relays skips these rows (it has no use for them): IgnoreUnknownRecordFlag.
	{name: tableSubtreeSummaries, snapID: IgnoreUnknownRecordFlag | 25, schema: withIndexes(idTable(tableSubtreeSummaries, "Path"), subtreeChildIndex),
		newRow: func() any { return new(SubtreeSummary) }},
}

// withIndexes adds secondary indexes to a table schema.
func withIndexes(t *memdb.TableSchema, idx ...*memdb.IndexSchema) *memdb.TableSchema {
	for _, i := range idx {
		t.Indexes[i.Name] = i
	}
	return t
}

// idTable is a table with one unique, case-sensitive string primary index named "id".
func idTable(name, field string) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}},
		},
	}
}

// dbSchema assembles the memdb schema from tables.
func dbSchema() *memdb.DBSchema {
	s := &memdb.DBSchema{Tables: make(map[string]*memdb.TableSchema, len(tables))}
	for _, t := range tables {
		if t.schema != nil {
			s.Tables[t.name] = t.schema
		}
	}
	s.Tables[tableCatalogRows] = idTable(tableCatalogRows, "Table")
	return s
}

// tableBySnapID finds a table definition by its snapshot byte.
func tableBySnapID(id byte) (tableDef, bool) {
	for _, t := range tables {
		if t.snapID == id {
			return t, true
		}
	}
	return tableDef{}, false
}
