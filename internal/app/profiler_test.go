package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/app"
)

func TestStartProfiler_ServesProfilesUntilStopped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, app.StartProfiler(ctx, addr, slog.New(slog.DiscardHandler)))
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "goroutine profile")

	require.Error(t, app.StartProfiler(context.Background(), addr, slog.New(slog.DiscardHandler)), "a taken address fails the command")
	cancel()
	require.Eventually(t, func() bool {
		_, err := http.Get("http://" + addr + "/debug/pprof/")
		return err != nil
	}, 5e9, 5e7)
}
