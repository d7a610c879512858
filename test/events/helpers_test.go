package events_test

import (
	"io"
	"log/slog"
)

func silentLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
