//go:build integration

package app_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
)

// syncBuffer is a log destination safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// silentPostgres is a TCP listener that accepts connections and never
// answers, as a Postgres host that is wedged (or a firewall that swallows
// packets after the handshake) does. It returns its address and a channel
// that gets a value for each accepted connection.
func silentPostgres(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or written
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

func silentPostgresConfig(t *testing.T, addr string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			// No connect_timeout: the default must bound the handshake.
			"DATABASE_URL":     "postgres://postgres@" + addr + "/vigil?sslmode=disable",
			"VIGIL_HTTP_ADDR":  "127.0.0.1:0",
			"TEMPORAL_ADDRESS": "127.0.0.1:" + strconv.Itoa(freePort(t)),
		}[k]
		return v, ok
	})
	require.NoError(t, err)
	return cfg
}

// TestReliability_Startup_SilentPostgresFirstSignalStops starts the real API
// and worker processes against a Postgres that accepts TCP and never answers:
// start-up says what it is doing, and the first signal (the context's
// cancellation, as main turns SIGINT/SIGTERM into) ends it within a couple of
// seconds with an error naming Postgres. Before the fix the process printed
// nothing and hung in lib/pq's handshake, which ignores the context.
func TestReliability_Startup_SilentPostgresFirstSignalStops(t *testing.T) {
	tests := []struct {
		name string
		run  func(context.Context, config.Config, *slog.Logger) error
	}{
		{"vigil api", app.API},
		{"vigil worker", app.Worker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, accepted := silentPostgres(t)
			cfg := silentPostgresConfig(t, addr)
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, nil))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tt.run(ctx, cfg, logger) }()

			select {
			case <-accepted:
			case err := <-errc:
				t.Fatalf("returned before reaching Postgres: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("never connected to the silent Postgres")
			}
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), "connecting to postgres") },
				2*time.Second, 10*time.Millisecond, "a start-up progress line: %s", logs.String())

			cancel() // the first signal
			start := time.Now()
			select {
			case err := <-errc:
				require.Error(t, err)
				require.Contains(t, err.Error(), "postgres")
				require.ErrorIs(t, err, context.Canceled)
				require.Less(t, time.Since(start), 2*time.Second)
			case <-time.After(3 * time.Second):
				t.Fatalf("still starting 3 s after the first signal; logs:\n%s", logs.String())
			}
		})
	}
}

// TestReliability_Startup_SilentPostgresConnectTimeout proves the connect
// timeout alone (no signal) ends the start-up of `vigil api` against a
// Postgres that never answers, with an error naming Postgres.
func TestReliability_Startup_SilentPostgresConnectTimeout(t *testing.T) {
	addr, _ := silentPostgres(t)
	cfg := silentPostgresConfig(t, addr)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- app.API(context.Background(), cfg, logger) }()
	select {
	case err := <-errc:
		took := time.Since(start)
		require.Error(t, err)
		require.Contains(t, err.Error(), "postgres")
		require.False(t, errors.Is(err, context.Canceled), "%v", err)
		require.True(t, database.IsUnavailable(err), "an unavailable Postgres: %v", err)
		require.GreaterOrEqual(t, took, database.DefaultConnectTimeout-500*time.Millisecond)
		require.Less(t, took, database.DefaultConnectTimeout+3*time.Second)
		require.Contains(t, logs.String(), "connecting to postgres")
	case <-time.After(database.DefaultConnectTimeout + 10*time.Second):
		t.Fatalf("the connect timeout did not end start-up; logs:\n%s", logs.String())
	}
}
