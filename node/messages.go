package node

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"patchtree/store"
)

// MessageType is the first byte of every Raft log entry; the rest is the JSON-encoded request.
// Values are append-only: they live in Raft logs and snapshots on disk, so a value is never
// renumbered or reused. Add new types at the end.
type MessageType uint8

// Message types.
const (
	SiteInitRequestType          MessageType = 1
	TokenCreateRequestType       MessageType = 2
	TokenDeleteRequestType       MessageType = 3
	LanguagesSetRequestType      MessageType = 4
	SettingPutRequestType        MessageType = 5
	ServerUpsertRequestType      MessageType = 6
	ServerDeleteRequestType      MessageType = 7
	CatalogStageRequestType      MessageType = 8
	CatalogCommitRequestType     MessageType = 9
	CatalogAbortRequestType      MessageType = 10
	SeverityChangeRequestType    MessageType = 11
	BulletinAdminRequestType     MessageType = 12
	ChildAddRequestType          MessageType = 13
	ChildJoinRequestType         MessageType = 14
	ChildRemoveRequestType       MessageType = 15
	ChildUpdateRequestType       MessageType = 16
	ReplicationRunRequestType    MessageType = 17
	TombstonesCollectRequestType MessageType = 18
	PolicyPutRequestType         MessageType = 19
	PolicyDeleteRequestType      MessageType = 20
	SettingDocPutRequestType     MessageType = 21
	AuditAppendRequestType       MessageType = 22
	ScansApplyRequestType        MessageType = 23
	ChildSummaryPutRequestType   MessageType = 24
	RunsPruneRequestType         MessageType = 25
	ChildRotateRequestType       MessageType = 26
	// SubtreeSummariesPutRequestType is written with IgnoreUnknownTypeFlag: a server from
	// before relays has no use for the summaries a relay forwards.
	SubtreeSummariesPutRequestType MessageType = 27
	// AuditedRequestType wraps an administrator's write with its audit entry (AuditedRequest).
	// It changes state, so it is not ignorable: a server from before it stops and asks to be
	// upgraded rather than apply the change without its entry, or skip the change.
	AuditedRequestType MessageType = 28
	// CatalogPublishRequestType makes the next staged batch of an import part of the catalog
	// version being published, hidden from readers until CatalogSwitchRequestType;
	// CatalogUnpublishRequestType takes the last published batch back out (an abort). They
	// change catalog rows, so they are not ignorable.
	CatalogPublishRequestType   MessageType = 29
	CatalogSwitchRequestType    MessageType = 30
	CatalogUnpublishRequestType MessageType = 31
	// CatalogStageRowsRequestType and CatalogPublishRowsRequestType are CatalogStageRequestType
	// and CatalogPublishRequestType (with a batch) for batches in store's row codec, and their
	// body is binary (runBatchEntry), not JSON. A server from before the row codec could not
	// decode the batch, so they are not ignorable: such a server stops and asks to be upgraded.
	CatalogStageRowsRequestType   MessageType = 32
	CatalogPublishRowsRequestType MessageType = 33
)

// IgnoreUnknownTypeFlag is the high bit of the type byte. It marks an entry that a server may
// skip when it does not know the type: an older server in a rolling upgrade logs it, counts it
// and goes on. New types carry it unless skipping them would leave existing state wrong (see
// DESIGN.md, "Rolling upgrades"); the known types below 128 never carry it. (nomad
// structs.IgnoreUnknownTypeFlag.)
const IgnoreUnknownTypeFlag MessageType = 128

// String names a message type for logs and errors.
func (t MessageType) String() string {
	switch t &^ IgnoreUnknownTypeFlag {
	case SiteInitRequestType:
		return "site-init"
	case TokenCreateRequestType:
		return "token-create"
	case TokenDeleteRequestType:
		return "token-delete"
	case LanguagesSetRequestType:
		return "languages-set"
	case SettingPutRequestType:
		return "setting-put"
	case ServerUpsertRequestType:
		return "server-upsert"
	case ServerDeleteRequestType:
		return "server-delete"
	case CatalogStageRequestType:
		return "catalog-stage"
	case CatalogCommitRequestType:
		return "catalog-commit"
	case CatalogAbortRequestType:
		return "catalog-abort"
	case SeverityChangeRequestType:
		return "severity-change"
	case BulletinAdminRequestType:
		return "bulletin-admin"
	case ChildAddRequestType:
		return "child-add"
	case ChildJoinRequestType:
		return "child-join"
	case ChildRemoveRequestType:
		return "child-remove"
	case ChildUpdateRequestType:
		return "child-update"
	case ReplicationRunRequestType:
		return "replication-run"
	case TombstonesCollectRequestType:
		return "tombstones-collect"
	case PolicyPutRequestType:
		return "policy-put"
	case PolicyDeleteRequestType:
		return "policy-delete"
	case SettingDocPutRequestType:
		return "setting-doc-put"
	case AuditAppendRequestType:
		return "audit-append"
	case ScansApplyRequestType:
		return "scans-apply"
	case ChildSummaryPutRequestType:
		return "child-summary-put"
	case RunsPruneRequestType:
		return "runs-prune"
	case ChildRotateRequestType:
		return "child-rotate"
	case SubtreeSummariesPutRequestType:
		return "subtree-summaries-put"
	case AuditedRequestType:
		return "audited"
	case CatalogPublishRequestType:
		return "catalog-publish"
	case CatalogSwitchRequestType:
		return "catalog-switch"
	case CatalogUnpublishRequestType:
		return "catalog-unpublish"
	case CatalogStageRowsRequestType:
		return "catalog-stage-rows"
	case CatalogPublishRowsRequestType:
		return "catalog-publish-rows"
	}
	if t&IgnoreUnknownTypeFlag != 0 {
		return fmt.Sprintf("message-type-%d(ignorable)", uint8(t&^IgnoreUnknownTypeFlag))
	}
	return fmt.Sprintf("message-type-%d", uint8(t))
}

// SiteInitRequest initialises a new site in one entry: its identity, the first admin token and
// its initial managed language ranges.
type SiteInitRequest struct {
	Site       store.SiteInfo `json:"site"`
	AdminToken store.Token    `json:"admin_token"`
	Languages  []string       `json:"languages"`
	// ServerToken is the site's server credential (its bearer is in Site.ServerBearer).
	ServerToken *store.Token `json:"server_token,omitempty"`
}

// TokenCreateRequest issues a token. The leader has generated its id and secret hash.
type TokenCreateRequest struct {
	Token store.Token `json:"token"`
}

// TokenDeleteRequest revokes a token.
type TokenDeleteRequest struct {
	ID string `json:"id"`
}

// LanguagesSetRequest replaces a languages row (validated and canonical ranges).
type LanguagesSetRequest struct {
	ID     string   `json:"id"`
	Ranges []string `json:"ranges"`
}

// SettingPutRequest stores one setting.
type SettingPutRequest struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// ServerUpsertRequest records a Raft server's addresses.
type ServerUpsertRequest struct {
	Server store.Server `json:"server"`
}

// ServerDeleteRequest forgets a Raft server.
type ServerDeleteRequest struct {
	ID string `json:"id"`
}

// CatalogStageRequest stages one bounded batch of an import's changes, encoded by
// store.EncodeBatch and kept encoded until the commit.
type CatalogStageRequest struct {
	RunID string `json:"run_id"`
	Batch []byte `json:"batch"`
}

// CatalogCommitRequest makes an import's staged changes visible at once: the switch entry.
type CatalogCommitRequest struct {
	Run    store.ImportRun    `json:"run"`
	Source *store.SourceState `json:"source,omitempty"`
}

// CatalogAbortRequest drops an import's staged changes.
type CatalogAbortRequest struct {
	RunID string `json:"run_id"`
}

// SeverityChangeRequest changes the custom severity levels.
type SeverityChangeRequest struct {
	Change store.SeverityChange `json:"change"`
}

// BulletinAdminRequest sets a bulletin's custom severity and/or disabled flag.
type BulletinAdminRequest struct {
	ID             string  `json:"id"`
	CustomSeverity *string `json:"custom_severity,omitempty"`
	Disabled       *bool   `json:"disabled,omitempty"`
}

// ChildAddRequest enrols a child site (its join token hashed).
type ChildAddRequest struct {
	Child store.Child `json:"child"`
}

// ChildJoinRequest exchanges a child's join token for its node credential.
type ChildJoinRequest struct {
	Name      string      `json:"name"`
	JoinHash  string      `json:"join_hash"`
	NodeToken store.Token `json:"node_token"`
	At        time.Time   `json:"at"`
}

// ChildRotateRequest revokes a child's node credential and issues a new one-time join token
// (its hash), keeping everything else of the child.
type ChildRotateRequest struct {
	Name     string `json:"name"`
	JoinHash string `json:"join_hash"`
}

// ChildRemoveRequest removes a child and revokes its credential.
type ChildRemoveRequest struct {
	Name string `json:"name"`
}

// ChildUpdateRequest records what a child reported.
type ChildUpdateRequest struct {
	Name   string            `json:"name"`
	Update store.ChildUpdate `json:"update"`
}

// ReplicationRunRequest records a finished run with the child's acknowledgement.
type ReplicationRunRequest struct {
	Run    store.ReplicationRun `json:"run"`
	Update store.ChildUpdate    `json:"update"`
}

// RunsPruneRequest forgets a child's oldest replication runs, keeping its newest Keep.
type RunsPruneRequest struct {
	Child string `json:"child"`
	Keep  int    `json:"keep"`
}

// TombstonesCollectRequest drops tombstones every child has passed.
type TombstonesCollectRequest struct {
	UpTo uint64 `json:"up_to"`
}

// Encode builds a log entry: the type byte followed by the JSON body, or by the binary body of
// the types that have one.
func Encode(t MessageType, req any) ([]byte, error) {
	if e, ok := req.(binaryEntry); ok {
		if t != CatalogStageRowsRequestType && t != CatalogPublishRowsRequestType {
			return nil, fmt.Errorf("encode %s: its body is JSON, not %T", t, req)
		}
		return e.appendEntry([]byte{byte(t)}), nil
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, body...), nil
}

// CatalogPublishRequest stages Batch (encoded by store.EncodeBatch) and publishes it, or without
// a batch publishes the next staged batch of an import (CatalogPublishRequestType); it takes the
// last published batch back out as a CatalogUnpublishRequestType. A CatalogSwitchRequestType
// entry carries a CatalogCommitRequest: the run and the source's state.
type CatalogPublishRequest struct {
	RunID string `json:"run_id"`
	Batch []byte `json:"batch,omitempty"`
}

// binaryEntry is a request whose entry body is binary, for the types that say so.
type binaryEntry interface {
	appendEntry(dst []byte) []byte
}

// runBatchEntry is the body of CatalogStageRowsRequestType and CatalogPublishRowsRequestType:
// the run id (uvarint length and bytes) and the encoded batch, the rest of the entry. Binary,
// so that a batch of a few hundred kilobytes is neither base64-encoded nor scanned as JSON.
type runBatchEntry struct {
	RunID string
	Batch []byte
}

func (e *runBatchEntry) appendEntry(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(e.RunID)))
	dst = append(dst, e.RunID...)
	return append(dst, e.Batch...)
}

// decodeRunBatch decodes a runBatchEntry body. The batch is copied: the store keeps it.
func decodeRunBatch(buf []byte) (runBatchEntry, error) {
	n, w := binary.Uvarint(buf)
	if w <= 0 || n > uint64(len(buf)-w) {
		return runBatchEntry{}, errors.New("run id length beyond the entry")
	}
	buf = buf[w:]
	return runBatchEntry{RunID: string(buf[:n]), Batch: bytes.Clone(buf[n:])}, nil
}
