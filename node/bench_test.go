package node

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"patchtree/store"
)

// benchNode starts a lone server, durable (raft-boltdb with fsync) or in memory (the baseline).
func benchNode(b *testing.B, durable bool) *Node {
	b.Helper()
	cfg := Config{Name: "hq", Role: RoleParent, DataDir: b.TempDir(), RaftBind: "127.0.0.1:0",
		APIAddr: "http://127.0.0.1:1", Languages: []string{"en"}, raftConf: fastRaft,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if !durable {
		_, cfg.transport = raft.NewInmemTransport("")
		cfg.inmem = true
	}
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Shutdown() })
	deadline := time.Now().Add(10 * time.Second)
	for !n.established.Load() {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

// BenchmarkApply measures one acknowledged write (languages set) end to end through Raft:
// durable is raft-boltdb with fsync per entry, inmem the baseline without disk.
func BenchmarkApply(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := map[bool]string{false: "inmem", true: "durable"}[durable]
		b.Run(name, func(b *testing.B) {
			n := benchNode(b, durable)
			ranges := [][]string{{"de"}, {"fr"}}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := n.SetLanguages(store.Actor{}, ranges[i%2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchState builds an FSM holding rows tokens.
func benchState(b *testing.B, rows int) *FSM {
	b.Helper()
	f, err := NewFSM(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < rows; i++ {
		tok := store.Token{ID: fmt.Sprintf("tok%06d", i), SecretHash: store.HashSecret(fmt.Sprint(i)),
			Role: store.RoleAgent, Name: fmt.Sprintf("agent on computer %d", i)}
		if err := f.State().CreateToken(uint64(i+1), &tok); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// BenchmarkSnapshot persists and restores a state of 100,000 rows. The raw sub-benchmark writes
// the uncompressed stream (the baseline); zstd is what the FSM writes. Bytes per snapshot are
// reported as a metric.
func BenchmarkSnapshot(b *testing.B) {
	const rows = 100_000
	f := benchState(b, rows)
	b.Run("persist/raw", func(b *testing.B) {
		var size int64
		for i := 0; i < b.N; i++ {
			n, err := f.State().Snapshot().WriteTo(io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			size = n
		}
		b.ReportMetric(float64(size), "bytes/snapshot")
	})
	var buf []byte
	b.Run("persist/zstd", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink := &memSink{}
			snap, _ := f.Snapshot()
			if err := snap.Persist(sink); err != nil {
				b.Fatal(err)
			}
			buf = sink.Bytes()
		}
		b.ReportMetric(float64(len(buf)), "bytes/snapshot")
	})
	b.Run("restore/zstd", func(b *testing.B) {
		dst, _ := NewFSM(slog.New(slog.NewTextHandler(io.Discard, nil)))
		for i := 0; i < b.N; i++ {
			if err := dst.Restore(io.NopCloser(bytes.NewReader(buf))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
