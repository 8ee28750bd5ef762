package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeWatchAPI is the part of the API SeedWatches uses: sign-in, the
// watch list and watch creation, with the watches it holds.
type fakeWatchAPI struct {
	mu      sync.Mutex
	watches []map[string]any
}

func (f *fakeWatchAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/auth/login":
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["login"] != "c01" || body["password"] != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "tok"})
	case r.Header.Get("Authorization") != "Bearer tok":
		w.WriteHeader(http.StatusUnauthorized)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/watches":
		_ = json.NewEncoder(w).Encode(map[string]any{"items": f.watches})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/watches":
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.watches = append(f.watches, body)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(body)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestSeedWatches_CreatesTheMissingOnesOnly(t *testing.T) {
	api := &fakeWatchAPI{watches: []map[string]any{{"description": "Demo: Dewsbury UTC"}, {"description": "someone's own"}}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	n, err := SeedWatches(t.Context(), srv.URL, "c01", "pw")
	require.NoError(t, err)
	require.Equal(t, len(demoWatches)-1, n, "the existing demo watch is kept")
	require.Len(t, api.watches, len(demoWatches)+1)

	n, err = SeedWatches(t.Context(), srv.URL, "c01", "pw")
	require.NoError(t, err)
	require.Zero(t, n, "a restart adds nothing")

	_, err = SeedWatches(t.Context(), srv.URL, "c01", "wrong")
	require.ErrorContains(t, err, "sign in as c01")
}
