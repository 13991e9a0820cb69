package hierarchy

import (
	"context"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"patchtree/store"
)

// WaitRunsRecorded waits until each child has a run recorded that started at or after since,
// or ctx ends, watching the replicated runs table: it works on any server of the site (WaitRuns
// is woken by the acknowledgements this server records, which only its leader does). A
// replicate-now --wait asked of a follower waits here, so that it outlives the leader: the runs
// acknowledged across the leader's death are recorded by the next one, from their tickets.
func (p *Parent) WaitRunsRecorded(ctx context.Context, children []string, since time.Time) (map[string]*store.ReplicationRun, error) {
	for {
		state := p.backend.State()
		ws := memdb.NewWatchSet()
		if _, err := state.ReplicationRuns(ws); err != nil {
			return nil, fmt.Errorf("watch replication runs: %w", err)
		}
		ws.Add(state.AbandonCh())
		got, err := p.runsSince(children, since)
		if err != nil || len(got) == len(children) {
			return got, err
		}
		if ws.WatchCtx(ctx) != nil {
			return got, nil
		}
	}
}
