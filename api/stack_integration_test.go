//go:build integration

package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/worker"
)

// demoPassword is every seeded demo staff member's password in tests.
const demoPassword = "demo-password"

var seedOnce sync.Once

// london is the demo hospital's time zone.
var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// stack is a worker on its own task queue and the API in front of it, on the
// package's real Postgres and Temporal server, with the demo hospital seeded.
type stack struct {
	*httptest.Server
	TaskQueue string
	Signer    *auth.Signer
}

func startStack(t *testing.T) *stack { return startStackWith(t, worker.Dependencies{}) }

// startStackWith is startStack with extra worker dependencies (Slack, SMS).
func startStackWith(t *testing.T, extra worker.Dependencies) *stack {
	t.Helper()
	return startStackOn(t, env.Client, extra, nil)
}

// startStackOn is startStackWith on a Temporal client of the test's own
// (for instance one with a data converter), with the API's dependencies
// adjusted by apiDeps when it is not nil.
func startStackOn(t *testing.T, tc client.Client, extra worker.Dependencies, apiDeps func(*api.Deps)) *stack {
	t.Helper()
	seedOnce.Do(func() {
		_, err := demo.SeedStaff(context.Background(), env.DB, demoPassword)
		require.NoError(t, err)
	})
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("integration-test-secret-0123456789abcdef")})
	require.NoError(t, err)
	taskQueue := "test-" + uuid.NewString()
	deps := extra
	deps.DB, deps.HospitalTZ, deps.TransitionKeys = env.DB, london, testenv.TransitionKeys
	w := worker.New(tc, taskQueue, deps)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	d := api.Deps{
		Stores:         stores.New(env.DB),
		Temporal:       tc,
		Logger:         env.Logger,
		Metrics:        metrics.New(),
		Namespace:      env.Temporal.Namespace(),
		TaskQueue:      taskQueue,
		TemporalUIURL:  "http://localhost:8233",
		Signer:         signer,
		HospitalTZ:     london,
		TransitionKeys: testenv.TransitionKeys,
		DatabaseURL:    env.DatabaseURL,
		// Tests wait seconds, not the production two minutes.
		AutoResolveWait: 2 * time.Second,
	}
	if apiDeps != nil {
		apiDeps(&d)
	}
	srv := httptest.NewServer(api.NewRouter(d))
	t.Cleanup(srv.Close)
	return &stack{Server: srv, TaskQueue: taskQueue, Signer: signer}
}

// call sends a request with an optional bearer token and JSON body, and
// decodes the JSON answer into out when out is not nil.
func (s *stack) call(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(t, jsonUnmarshal(raw, out), string(raw))
	}
	return resp
}

// apiKey makes an alert-source API key and returns its plaintext.
func (s *stack) apiKey(t *testing.T, name string) string {
	t.Helper()
	k, err := auth.NewAPIKey()
	require.NoError(t, err)
	_, err = env.DB.Exec(`INSERT INTO api_keys (name, prefix, key_hash) VALUES ($1, $2, $3)`, name, k.Prefix, k.Hash)
	require.NoError(t, err)
	return k.Plaintext.Reveal()
}

// login logs a demo staff member in and returns the access token.
func (s *stack) login(t *testing.T, login string) string {
	t.Helper()
	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/login", "", `{"login":"`+login+`","password":"`+demoPassword+`"}`, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return tok.AccessToken
}
