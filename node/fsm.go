package node

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"

	"patchtree/iocount"
	"patchtree/store"
)

var _ raft.FSM = (*FSM)(nil)

// maxSnapshotWindow bounds the zstd decoder's window on restore.
const maxSnapshotWindow = 64 << 20

// FSM applies Raft log entries to the store. Apply is deterministic: every time and id in a
// request was stamped by the leader before raft.Apply.
type FSM struct {
	logger *slog.Logger

	mu    sync.RWMutex
	state *store.Store

	// applied is the index of the last entry Apply finished, or of the snapshot Restore
	// installed. Raft's own AppliedIndex moves when entries are queued for the FSM, before
	// they are applied; readiness reads this one.
	applied atomic.Uint64
	// skipped counts entries of unknown ignorable types (see IgnoreUnknownTypeFlag).
	skipped atomic.Uint64
	// stop ends the process on an entry this version must not skip; tests replace it.
	stop func(error)
	// beforeApply is a test hook run before each command; nil in production.
	beforeApply func(*raft.Log)
}

// NewFSM returns an FSM over an empty store.
func NewFSM(logger *slog.Logger) (*FSM, error) {
	s, err := store.New()
	if err != nil {
		return nil, err
	}
	return &FSM{logger: logger, state: s, stop: exitTooOld}, nil
}

// AppliedIndex returns the index of the last entry the FSM applied (or the snapshot it restored).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// SkippedEntries returns how many entries of unknown ignorable types this FSM skipped.
func (f *FSM) SkippedEntries() uint64 { return f.skipped.Load() }

// State returns the current store. After a restore it is a different store; the old one's
// AbandonCh is closed.
func (f *FSM) State() *store.Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state
}

// Apply decodes one entry and applies it at log.Index. A decode failure panics: the log is
// corrupt, and going on would diverge the replicas. An unknown type is skipped when it carries
// IgnoreUnknownTypeFlag and otherwise stops the process with a message to upgrade it (upgrade.go).
// A store error (a request that the state rejects) is returned as the response.
func (f *FSM) Apply(log *raft.Log) any {
	if log.Type != raft.LogCommand {
		return nil
	}
	if len(log.Data) == 0 {
		panic(fmt.Sprintf("raft log %d: empty entry", log.Index))
	}
	if f.beforeApply != nil {
		f.beforeApply(log)
	}
	resp := f.apply(MessageType(log.Data[0]), log.Data[1:], log.Index)
	f.applied.Store(log.Index)
	return resp
}

// apply is Apply's switch on the type byte, the ignorable flag masked off.
func (f *FSM) apply(raw MessageType, buf []byte, idx uint64) any {
	switch t := raw &^ IgnoreUnknownTypeFlag; t {
	case SiteInitRequestType:
		return f.applySiteInit(buf, idx)
	case TokenCreateRequestType:
		return f.applyTokenCreate(buf, idx)
	case TokenDeleteRequestType:
		return f.applyTokenDelete(buf, idx)
	case LanguagesSetRequestType:
		return f.applyLanguagesSet(buf, idx)
	case SettingPutRequestType:
		return f.applySettingPut(buf, idx)
	case ServerUpsertRequestType:
		return f.applyServerUpsert(buf, idx)
	case ServerDeleteRequestType:
		return f.applyServerDelete(buf, idx)
	case CatalogStageRequestType:
		return f.applyCatalogStage(buf, idx)
	case CatalogCommitRequestType:
		return f.applyCatalogCommit(buf, idx)
	case CatalogAbortRequestType:
		return f.applyCatalogAbort(buf, idx)
	case SeverityChangeRequestType:
		return f.applySeverityChange(buf, idx)
	case BulletinAdminRequestType:
		return f.applyBulletinAdmin(buf, idx)
	case ChildAddRequestType:
		var req ChildAddRequest
		decode(t, buf, idx, &req)
		return f.State().AddChild(idx, &req.Child)
	case ChildJoinRequestType:
		var req ChildJoinRequest
		decode(t, buf, idx, &req)
		return f.State().JoinChild(idx, req.Name, req.JoinHash, &req.NodeToken, req.At)
	case ChildRemoveRequestType:
		var req ChildRemoveRequest
		decode(t, buf, idx, &req)
		return f.State().RemoveChild(idx, req.Name)
	case ChildUpdateRequestType:
		var req ChildUpdateRequest
		decode(t, buf, idx, &req)
		return f.State().UpdateChild(idx, req.Name, &req.Update)
	case ReplicationRunRequestType:
		var req ReplicationRunRequest
		decode(t, buf, idx, &req)
		return f.State().RecordReplicationRun(idx, &req.Run, &req.Update)
	case TombstonesCollectRequestType:
		var req TombstonesCollectRequest
		decode(t, buf, idx, &req)
		return f.State().CollectTombstones(idx, req.UpTo)
	case PolicyPutRequestType:
		var req PolicyPutRequest
		decode(t, buf, idx, &req)
		return f.State().PutPolicy(idx, &req.Policy, req.Audit)
	case PolicyDeleteRequestType:
		var req PolicyDeleteRequest
		decode(t, buf, idx, &req)
		return f.State().DeletePolicy(idx, req.ID, req.Audit)
	case SettingDocPutRequestType:
		var req SettingDocPutRequest
		decode(t, buf, idx, &req)
		return f.State().PutSettingDoc(idx, &req.Doc, req.Audit)
	case AuditAppendRequestType:
		var req AuditAppendRequest
		decode(t, buf, idx, &req)
		return f.State().AppendAudit(idx, req.Entries)
	case ScansApplyRequestType:
		var req ScansApplyRequest
		decode(t, buf, idx, &req)
		scans, err := store.DecodeScans(req.Batch)
		if err != nil {
			return fmt.Errorf("decode scans: %v: %w", err, store.ErrInvalid)
		}
		out, err := f.State().ApplyScans(idx, scans)
		if err != nil {
			return err
		}
		return out
	case ChildSummaryPutRequestType:
		var req ChildSummaryPutRequest
		decode(t, buf, idx, &req)
		stored, reason, err := f.State().PutChildSummary(idx, &req.Summary, req.Run)
		if err != nil {
			return err
		}
		return &SummaryOutcome{Stored: stored, Reason: reason}
	case RunsPruneRequestType:
		var req RunsPruneRequest
		decode(t, buf, idx, &req)
		_, err := f.State().PruneReplicationRuns(idx, req.Child, req.Keep)
		return err
	case ChildRotateRequestType:
		var req ChildRotateRequest
		decode(t, buf, idx, &req)
		return f.State().RotateChild(idx, req.Name, req.JoinHash)
	case SubtreeSummariesPutRequestType:
		return f.applySubtreeSummariesPut(buf, idx)
	case AuditedRequestType:
		return f.applyAudited(buf, idx)
	case CatalogPublishRequestType, CatalogUnpublishRequestType:
		var req CatalogPublishRequest
		decode(t, buf, idx, &req)
		if t == CatalogUnpublishRequestType {
			return publishResponse(f.State().UnpublishCatalog(idx, req.RunID))
		}
		return publishResponse(f.State().PublishCatalog(idx, req.RunID, req.Batch))
	case CatalogStageRowsRequestType, CatalogPublishRowsRequestType:
		e, err := decodeRunBatch(buf)
		if err != nil {
			panic(fmt.Sprintf("raft log %d: decode %s: %v", idx, t, err))
		}
		if t == CatalogStageRowsRequestType {
			return f.State().StageCatalog(idx, e.RunID, e.Batch)
		}
		return publishResponse(f.State().PublishCatalog(idx, e.RunID, e.Batch))
	case CatalogSwitchRequestType:
		var req CatalogCommitRequest
		decode(t, buf, idx, &req)
		return f.State().SwitchCatalog(idx, &req.Run, req.Source)
	default:
		return f.unknownType(raw, idx)
	}
}

// publishResponse is the FSM's response to a publish step: its progress, or its error.
func publishResponse(prog *store.PublishProgress, err error) any {
	if err != nil {
		return err
	}
	return prog
}

// decode unmarshals a request body or panics (see Apply).
func decode(t MessageType, buf []byte, idx uint64, req any) {
	if err := json.Unmarshal(buf, req); err != nil {
		panic(fmt.Sprintf("raft log %d: decode %s: %v", idx, t, err))
	}
}

func (f *FSM) applySiteInit(buf []byte, idx uint64) any {
	var req SiteInitRequest
	decode(SiteInitRequestType, buf, idx, &req)
	return f.State().InitSite(idx, &req.Site, &req.AdminToken, req.Languages, req.ServerToken)
}

func (f *FSM) applyTokenCreate(buf []byte, idx uint64) any {
	var req TokenCreateRequest
	decode(TokenCreateRequestType, buf, idx, &req)
	return f.State().CreateToken(idx, &req.Token)
}

func (f *FSM) applyTokenDelete(buf []byte, idx uint64) any {
	var req TokenDeleteRequest
	decode(TokenDeleteRequestType, buf, idx, &req)
	return f.State().DeleteToken(idx, req.ID)
}

func (f *FSM) applyLanguagesSet(buf []byte, idx uint64) any {
	var req LanguagesSetRequest
	decode(LanguagesSetRequestType, buf, idx, &req)
	return f.State().SetLanguages(idx, req.ID, req.Ranges)
}

func (f *FSM) applySettingPut(buf []byte, idx uint64) any {
	var req SettingPutRequest
	decode(SettingPutRequestType, buf, idx, &req)
	return f.State().PutSetting(idx, req.Key, req.Value)
}

func (f *FSM) applyServerUpsert(buf []byte, idx uint64) any {
	var req ServerUpsertRequest
	decode(ServerUpsertRequestType, buf, idx, &req)
	return f.State().UpsertServer(idx, &req.Server)
}

func (f *FSM) applyServerDelete(buf []byte, idx uint64) any {
	var req ServerDeleteRequest
	decode(ServerDeleteRequestType, buf, idx, &req)
	return f.State().DeleteServer(idx, req.ID)
}

func (f *FSM) applyCatalogStage(buf []byte, idx uint64) any {
	var req CatalogStageRequest
	decode(CatalogStageRequestType, buf, idx, &req)
	return f.State().StageCatalog(idx, req.RunID, req.Batch)
}

func (f *FSM) applyCatalogCommit(buf []byte, idx uint64) any {
	var req CatalogCommitRequest
	decode(CatalogCommitRequestType, buf, idx, &req)
	return f.State().CommitCatalog(idx, &req.Run, req.Source)
}

func (f *FSM) applyCatalogAbort(buf []byte, idx uint64) any {
	var req CatalogAbortRequest
	decode(CatalogAbortRequestType, buf, idx, &req)
	return f.State().AbortCatalog(idx, req.RunID)
}

func (f *FSM) applySeverityChange(buf []byte, idx uint64) any {
	var req SeverityChangeRequest
	decode(SeverityChangeRequestType, buf, idx, &req)
	return f.State().ChangeSeverityLevels(idx, &req.Change)
}

func (f *FSM) applyBulletinAdmin(buf []byte, idx uint64) any {
	var req BulletinAdminRequest
	decode(BulletinAdminRequestType, buf, idx, &req)
	return f.State().SetBulletinAdmin(idx, req.ID, req.CustomSeverity, req.Disabled)
}

// Snapshot takes a point-in-time view; the slow part happens in Persist, off the apply path.
// Raft calls it between Applies, so the applied index it records matches the view.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.State().Snapshot(), applied: f.applied.Load()}, nil
}

// Restore replaces the whole state with the snapshot's: a fresh store is decoded, swapped in,
// and the old store is abandoned so blocked queries wake and re-read.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReader(rc)
	applied, hasFrame := readAppliedFrame(br)
	dec, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(maxSnapshotWindow), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("snapshot restore: zstd: %w", err)
	}
	defer dec.Close()
	fresh, err := store.Restore(dec)
	if err != nil {
		if errors.Is(err, store.ErrUnknownRecord) {
			f.logger.Error("cannot restore a snapshot written by a newer patchtree: upgrade this server", "err", err)
		}
		return fmt.Errorf("snapshot restore: %w", err)
	}
	if n := fresh.SkippedRecords(); n > 0 {
		f.logger.Error("snapshot restore skipped records of ignorable types this version does not know; upgrade this server",
			"records", n)
	}
	if !hasFrame {
		// A snapshot from a build before the frame: the state's own latest index is the best
		// lower bound (readiness then waits for the log, never less).
		applied = fresh.LatestIndex()
	}
	f.mu.Lock()
	old := f.state
	f.state = fresh
	f.mu.Unlock()
	f.applied.Store(applied)
	old.Abandon()
	return nil
}

// appliedFrameMagic is a zstd skippable frame (0x184D2A50-5F are reserved for them) that leads
// every snapshot and carries the FSM's applied index, little-endian. zstd decoders skip such
// frames, so a build that does not know it reads the snapshot unchanged.
const (
	appliedFrameMagic = 0x184D2A57
	appliedFrameSize  = 8
)

// readAppliedFrame consumes the applied-index frame if the stream starts with one.
func readAppliedFrame(br *bufio.Reader) (uint64, bool) {
	hdr, err := br.Peek(8 + appliedFrameSize)
	if err != nil || binary.LittleEndian.Uint32(hdr) != appliedFrameMagic ||
		binary.LittleEndian.Uint32(hdr[4:]) != appliedFrameSize {
		return 0, false
	}
	applied := binary.LittleEndian.Uint64(hdr[8:])
	br.Discard(len(hdr))
	return applied, true
}

type fsmSnapshot struct {
	snap    *store.Snapshot
	applied uint64
}

// Persist writes the zstd-compressed snapshot stream to the sink, cancelling it on any error.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start, counted := time.Now(), &iocount.Writer{W: sink}
	if err := s.persist(counted); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot %s: %w", sink.ID(), err)
	}
	observeSnapshot(start, counted.N)
	return sink.Close()
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	var frame [8 + appliedFrameSize]byte
	binary.LittleEndian.PutUint32(frame[:], appliedFrameMagic)
	binary.LittleEndian.PutUint32(frame[4:], appliedFrameSize)
	binary.LittleEndian.PutUint64(frame[8:], s.applied)
	if _, err := w.Write(frame[:]); err != nil {
		return err
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	if _, err := s.snap.WriteTo(enc); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}

// Release is a no-op: memdb snapshots need no cleanup.
func (s *fsmSnapshot) Release() {}
