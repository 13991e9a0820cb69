package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
)

func TestRaftLoggerLevels(t *testing.T) {
	for _, tc := range []struct {
		name  string
		log   func(l hclog.Logger)
		level slog.Level // handler level
		want  string     // expected line fragment; "" means nothing is logged
	}{
		{"warn stays a warning", func(l hclog.Logger) { l.Warn("failed to contact", "server-id", "b") },
			slog.LevelInfo, `level=WARN msg="failed to contact" component=raft server-id=b`},
		{"error", func(l hclog.Logger) { l.Error("failed to commit logs", "error", "disk") },
			slog.LevelInfo, `level=ERROR msg="failed to commit logs" component=raft error=disk`},
		{"first election is info", func(l hclog.Logger) {
			l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
		}, slog.LevelInfo, `level=INFO msg="heartbeat timeout reached, starting election"`},
		{"election after a leader went silent stays a warning", func(l hclog.Logger) {
			l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "10.0.0.1:8300", "last-leader-id", "a")
		}, slog.LevelInfo, `level=WARN msg="heartbeat timeout reached, starting election"`},
		{"raft info is quiet at info", func(l hclog.Logger) { l.Info("entering follower state") }, slog.LevelInfo, ""},
		{"raft info shows at debug", func(l hclog.Logger) { l.Info("entering follower state") },
			slog.LevelDebug, `level=DEBUG msg="entering follower state" component=raft`},
		{"raft debug is below debug", func(l hclog.Logger) { l.Debug("lots") }, slog.LevelDebug, ""},
		{"named and with", func(l hclog.Logger) { l.Named("net").With("peer", "c").Warn("slow", "ms", 5) },
			slog.LevelInfo, `msg=slow component=raft.net peer=c ms=5`},
		{"fmt values", func(l hclog.Logger) { l.Error("expected heartbeat, got", "command", hclog.Fmt("%d-%s", 7, "x")) },
			slog.LevelInfo, `command=7-x`},
		{"standard writer infers the level", func(l hclog.Logger) {
			l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[WARN] pool exhausted")
		}, slog.LevelInfo, `level=WARN msg="pool exhausted"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			handler := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}})
			tc.log(newRaftLogger(slog.New(handler), "raft"))
			got := buf.String()
			if tc.want == "" {
				if got != "" {
					t.Fatalf("logged %q, want nothing", got)
				}
				return
			}
			if strings.Count(got, "\n") != 1 || !strings.Contains(got, tc.want) {
				t.Fatalf("logged %q, want one line containing %q", got, tc.want)
			}
		})
	}
}

func TestRaftLoggerIsLevel(t *testing.T) {
	l := newRaftLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn})), "raft")
	if l.IsInfo() || !l.IsWarn() || !l.IsError() || l.GetLevel() != hclog.Warn {
		t.Fatalf("IsInfo %t IsWarn %t IsError %t GetLevel %s, want a logger at warn", l.IsInfo(), l.IsWarn(), l.IsError(), l.GetLevel())
	}
}
