package httpserve_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/httpserve"
)

func get(t *testing.T, url string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestStart(t *testing.T) {
	url, stop, err := httpserve.Start("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	}))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)

	body, err := get(t, url+"/x")
	require.NoError(t, err)
	require.Equal(t, "hello /x", body)

	// A taken port fails the start.
	_, _, err = httpserve.Start(strings.TrimPrefix(url, "http://"), http.NotFoundHandler())
	require.ErrorContains(t, err, "listen ")

	stop()
	stop() // a second stop is harmless
	_, err = get(t, url+"/x")
	require.Error(t, err, "the server is stopped")
}
