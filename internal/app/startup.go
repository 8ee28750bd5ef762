package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// postgresConnectTimeout bounds the start-up step that reaches Postgres
// (creating the database when asked, then opening and pinging it). Each
// connection's handshake is bounded separately by the DSN's connect_timeout
// (database.DefaultConnectTimeout unless set).
const postgresConnectTimeout = 30 * time.Second

// startStep runs one start-up step: it logs name, runs fn bounded by timeout
// (0: only by ctx) and returns as soon as ctx ends, even when fn ignores its
// context (lib/pq does during its handshake). An abandoned fn finishes in the
// background and release, when set, frees what it made. Errors of fn are
// returned as they are; an abandoned step's error names the step and wraps
// the context's cause.
func startStep[T any](ctx context.Context, logger *slog.Logger, name string, timeout time.Duration,
	fn func(context.Context) (T, error), release func(T), attrs ...any,
) (T, error) {
	logger.InfoContext(ctx, name, attrs...)
	stepCtx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		stepCtx, cancel = context.WithTimeout(ctx, timeout)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(stepCtx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		cancel()
		return r.v, r.err
	case <-stepCtx.Done():
		cause := context.Cause(stepCtx)
		cancel()
		go func() {
			if r := <-done; r.err == nil && release != nil {
				release(r.v)
			}
		}()
		var zero T
		return zero, fmt.Errorf("%s: gave up: %w", name, cause)
	}
}
