package main

import (
	"errors"
	"time"

	"github.com/spf13/pflag"

	"patchtree/node"
)

// snapshotFlags are serve's Raft snapshot and backup settings.
type snapshotFlags struct {
	threshold, trailingLogs uint64
	interval                time.Duration
	maxBytes                int64
}

// register adds the flags; their defaults are hashicorp/raft's (raft.DefaultConfig).
func (s *snapshotFlags) register(fs *pflag.FlagSet) {
	fs.Uint64Var(&s.threshold, "snapshot-threshold", 8192, "take a Raft snapshot once this many log entries were applied since the last one")
	fs.DurationVar(&s.interval, "snapshot-interval", 120*time.Second, "how often to check whether a Raft snapshot is due (randomised up to twice this)")
	fs.Uint64Var(&s.trailingLogs, "trailing-logs", 10240, "log entries kept behind a snapshot, so that a lagging server catches up from the log")
	fs.Int64Var(&s.maxBytes, "max-snapshot-bytes", node.DefaultMaxSnapshotBytes, "largest backup PUT /v1/snapshot (snapshot restore) accepts")
}

// apply validates the flags and sets them in the node configuration.
func (s *snapshotFlags) apply(cfg *node.Config) error {
	switch {
	case s.threshold == 0:
		return errors.New("--snapshot-threshold must be positive")
	case s.interval <= 0:
		return errors.New("--snapshot-interval must be positive")
	case s.trailingLogs == 0:
		return errors.New("--trailing-logs must be positive: a follower that lags by one entry would need a whole snapshot")
	case s.maxBytes <= 0:
		return errors.New("--max-snapshot-bytes must be positive")
	}
	cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs = s.threshold, s.interval, s.trailingLogs
	cfg.MaxSnapshotBytes = s.maxBytes
	return nil
}
