package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func noEnv(string) (string, bool) { return "", false }

func TestRun_UsageAndCommands(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string
	}{
		{"no command prints usage", nil, nil, 2, "usage: vigil <command>"},
		{"help prints usage", []string{"--help"}, nil, 0, "commands:"},
		{"unknown command", []string{"serve"}, nil, 2, `unknown command "serve"`},
		{"bad configuration is one line naming the variable", []string{"api"}, map[string]string{"VIGIL_HTTP_ADDR": "nope"}, 2, "VIGIL_HTTP_ADDR"},
		{"healthcheck needs a url", []string{"healthcheck"}, nil, 2, "usage: vigil healthcheck URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			}
			code := run(tt.args, lookup, &stdout, &stderr)
			require.Equal(t, tt.code, code)
			require.Contains(t, stderr.String(), tt.stderr)
			if tt.env != nil {
				require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   int
	}{
		{"2xx is healthy", http.StatusOK, 0},
		{"503 is unhealthy", http.StatusServiceUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			var stderr bytes.Buffer
			require.Equal(t, tt.code, run([]string{"healthcheck", srv.URL}, noEnv, &bytes.Buffer{}, &stderr))
		})
	}
	var stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"healthcheck", "http://127.0.0.1:1/"}, noEnv, &bytes.Buffer{}, &stderr))
	require.Contains(t, stderr.String(), "vigil healthcheck:")
}

func TestReliability_Startup_SignalsStopThenExit(t *testing.T) {
	sigc := make(chan os.Signal, 2)
	done := make(chan struct{})
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	var logs bytes.Buffer
	go stopOnSignals(sigc, done, cancel, slog.New(slog.NewTextHandler(&logs, nil)), func(code int) { exited <- code })

	sigc <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("the first signal exited (%d)", code)
	case <-time.After(50 * time.Millisecond):
	}
	sigc <- syscall.SIGINT
	select {
	case code := <-exited:
		require.Equal(t, 128+int(syscall.SIGINT), code)
	case <-time.After(2 * time.Second):
		t.Fatal("the second signal did not exit")
	}
}
