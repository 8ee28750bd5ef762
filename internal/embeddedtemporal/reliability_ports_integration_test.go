//go:build integration

package embeddedtemporal

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReliability_Ports_StartsWhileAPickedPortIsTaken simulates the race
// that failed `make test` while other Temporal servers ran on the machine:
// a port Start picked as free is bound by someone else before the server
// binds it. Start must still come up, on freshly picked ports for every
// listener (frontend, internal services, Web UI), never re-using the lost
// one.
func TestReliability_Ports_StartsWhileAPickedPortIsTaken(t *testing.T) {
	// The order Start picks ports in: the frontend's (1), then per service
	// frontend, history, matching, worker: gRPC (not the frontend's) and
	// membership (2..8), then the Web UI's (9).
	tests := []struct {
		name    string
		lostPic int
		// relaunch: the server's bind failed and was retried (the Web UI's
		// port is re-picked before it binds).
		relaunch bool
	}{
		{"frontend port", 1, true},
		{"history service port", 3, true},
		{"web ui port", 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Another process holds this port.
			held, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer func() { _ = held.Close() }()
			heldPort := held.Addr().(*net.TCPAddr).Port

			var mu sync.Mutex
			calls, handedOut := 0, false
			pickPort = func(ip string) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == tt.lostPic {
					handedOut = true
					return heldPort, nil
				}
				return freePort(ip)
			}
			t.Cleanup(func() { pickPort = freePort })

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			logs := &lockedBuffer{}
			srv, err := Start(ctx, Options{UIPort: AnyPort, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			require.NoError(t, err)
			defer func() { require.NoError(t, srv.Stop()) }()

			require.Equal(t, tt.relaunch, strings.Contains(logs.String(), "retrying with other ports"), logs.String())
			mu.Lock()
			require.True(t, handedOut, "the taken port was handed out (%d picks)", calls)
			mu.Unlock()
			_, frontendPort, err := net.SplitHostPort(srv.FrontendAddress())
			require.NoError(t, err)
			require.NotEqual(t, strconv.Itoa(heldPort), frontendPort)
			require.NotEqual(t, "http://127.0.0.1:"+strconv.Itoa(heldPort), srv.UIURL())

			resp, err := http.Get(srv.UIURL() + "/healthz") //nolint:noctx // test
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
