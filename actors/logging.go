package actors

import (
	"context"
	"log/slog"
)

// demoteHandler lowers Info records to Debug: protoactor-go reports routine
// events (system started, dead letters) at Info, which would make streamd
// noisy at its default level.
type demoteHandler struct{ slog.Handler }

func (d demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, l)
}

func (d demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demoteHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return demoteHandler{d.Handler.WithAttrs(a)}
}

func (d demoteHandler) WithGroup(n string) slog.Handler {
	return demoteHandler{d.Handler.WithGroup(n)}
}
