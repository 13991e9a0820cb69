package node

// What the node measures as it happens: Raft apply latency by entry type, and each snapshot's
// size and duration. The state it holds (term, indexes) is read at scrape time by the metrics
// package from Status.

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	raftApplySeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "patchtree_raft_apply_duration_seconds",
		Help:    "Time from submitting a Raft entry to its commit and apply on this server (the leader), by entry type.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"type"})
	snapshotSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "patchtree_raft_snapshot_duration_seconds",
		Help:    "Time to persist one FSM snapshot (compress and write it).",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})
	snapshotBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "patchtree_raft_snapshot_size_bytes",
		Help: "Size of the last FSM snapshot this server persisted (compressed), in bytes.",
	})
)

// Collectors are the node's event metrics, for the server's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{raftApplySeconds, snapshotSeconds, snapshotBytes}
}

// observeApply records one apply's latency.
func observeApply(t MessageType, d time.Duration) {
	raftApplySeconds.WithLabelValues(t.String()).Observe(d.Seconds())
}

// observeSnapshot records a persisted snapshot.
func observeSnapshot(start time.Time, size int64) {
	snapshotSeconds.Observe(time.Since(start).Seconds())
	snapshotBytes.Set(float64(size))
}
