package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	hclog "github.com/hashicorp/go-hclog"
)

// raftLogger hands hashicorp/raft's log lines (it logs through an hclog.Logger) to the site's
// slog handler, so that stderr carries one format. Levels map as:
//
//	hclog Trace, Debug -> below slog Debug (shown only with a handler level under debug)
//	hclog Info         -> slog Debug (Raft's state changes: --log-level debug shows them)
//	hclog Warn, Error  -> slog Warn, Error
//
// One warning is expected on every normal start: a server that has not heard from any leader
// since it started reaches its heartbeat timeout and starts an election. That line is logged
// at Info; the same timeout after a known leader went silent stays a warning.
type raftLogger struct {
	// base is the site's logger; logger is base with this logger's name and With arguments.
	base, logger *slog.Logger
	name         string
	// implied are the With arguments, kept for ImpliedArgs and Named.
	implied []any
}

var _ hclog.Logger = (*raftLogger)(nil)

// raftTraceLevel is where hclog's Trace and Debug lines go: below slog's Debug.
const raftTraceLevel = slog.LevelDebug - 4

// newRaftLogger returns an hclog.Logger named name that logs through logger.
func newRaftLogger(logger *slog.Logger, name string) *raftLogger {
	return deriveRaftLogger(logger, name, nil)
}

func deriveRaftLogger(base *slog.Logger, name string, implied []any) *raftLogger {
	logger := base.With("component", name)
	if len(implied) > 0 {
		logger = logger.With(slogArgs(implied)...)
	}
	return &raftLogger{base: base, logger: logger, name: name, implied: implied}
}

// slogLevel maps an hclog level, and the one expected warning, to a slog level.
func slogLevel(level hclog.Level, msg string, args []any) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return raftTraceLevel
	case hclog.Info, hclog.NoLevel:
		return slog.LevelDebug
	case hclog.Warn:
		if msg == "heartbeat timeout reached, starting election" && !knewLeader(args) {
			return slog.LevelInfo
		}
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// knewLeader reports whether a heartbeat-timeout line names a previous leader.
func knewLeader(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "last-leader-id" {
			return fmt.Sprint(args[i+1]) != ""
		}
	}
	return false
}

// slogArgs turns hclog's key/value arguments into slog's, formatting hclog.Fmt values.
func slogArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				a = fmt.Sprintf(format, f[1:]...)
			}
		}
		if i%2 == 0 {
			if _, ok := a.(string); !ok {
				a = fmt.Sprint(a)
			}
		}
		out = append(out, a)
	}
	if len(out)%2 == 1 {
		out = append(out[:len(out)-1], "extra", out[len(out)-1])
	}
	return out
}

// Log logs msg at level.
func (l *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level, msg, args)
	ctx := context.Background()
	if !l.logger.Enabled(ctx, lvl) {
		return
	}
	l.logger.Log(ctx, lvl, msg, slogArgs(args)...)
}

// Trace logs at hclog's Trace level.
func (l *raftLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug logs at hclog's Debug level.
func (l *raftLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info logs at hclog's Info level.
func (l *raftLogger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn logs at hclog's Warn level.
func (l *raftLogger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error logs at hclog's Error level.
func (l *raftLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *raftLogger) enabled(level hclog.Level) bool {
	return l.logger.Enabled(context.Background(), slogLevel(level, "", nil))
}

// IsTrace reports whether Trace lines are logged.
func (l *raftLogger) IsTrace() bool { return l.enabled(hclog.Trace) }

// IsDebug reports whether Debug lines are logged.
func (l *raftLogger) IsDebug() bool { return l.enabled(hclog.Debug) }

// IsInfo reports whether Info lines are logged.
func (l *raftLogger) IsInfo() bool { return l.enabled(hclog.Info) }

// IsWarn reports whether Warn lines are logged.
func (l *raftLogger) IsWarn() bool { return l.enabled(hclog.Warn) }

// IsError reports whether Error lines are logged.
func (l *raftLogger) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs returns the arguments added with With.
func (l *raftLogger) ImpliedArgs() []any { return l.implied }

// With returns a logger that adds args to every line.
func (l *raftLogger) With(args ...any) hclog.Logger {
	return deriveRaftLogger(l.base, l.name, append(append([]any{}, l.implied...), args...))
}

// Name returns the logger's name.
func (l *raftLogger) Name() string { return l.name }

// Named returns a logger whose name has name appended.
func (l *raftLogger) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

// ResetNamed returns a logger named name.
func (l *raftLogger) ResetNamed(name string) hclog.Logger {
	return deriveRaftLogger(l.base, name, l.implied)
}

// SetLevel does nothing: the site's slog handler (--log-level) decides what is logged.
func (l *raftLogger) SetLevel(hclog.Level) {}

// GetLevel returns the lowest hclog level that is logged.
func (l *raftLogger) GetLevel() hclog.Level {
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if l.enabled(level) {
			return level
		}
	}
	return hclog.Error
}

// StandardLogger returns a standard library logger whose lines go through this logger.
func (l *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer whose lines go through this logger: at opts.ForceLevel, or
// at the level a "[WARN] "-style prefix names, or at Info.
func (l *raftLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return &raftLogWriter{logger: l, force: opts.ForceLevel}
}

// raftLogWriter logs each line written to it.
type raftLogWriter struct {
	logger *raftLogger
	force  hclog.Level
}

func (w *raftLogWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg := strings.TrimSpace(string(line))
		if msg == "" {
			continue
		}
		level := w.force
		if level == hclog.NoLevel {
			level = hclog.Info
			for prefix, l := range map[string]hclog.Level{"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug,
				"[INFO]": hclog.Info, "[WARN]": hclog.Warn, "[ERROR]": hclog.Error, "[ERR]": hclog.Error} {
				if strings.HasPrefix(msg, prefix) {
					level, msg = l, strings.TrimSpace(msg[len(prefix):])
					break
				}
			}
		}
		w.logger.Log(level, msg)
	}
	return len(p), nil
}
