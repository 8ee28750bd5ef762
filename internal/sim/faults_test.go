package sim

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaults_Wrap(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	unavailable := func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
	serve := func(h http.Handler, ctx context.Context) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
		return rec
	}

	tests := []struct {
		name        string
		failureRate float64
		want        int
	}{
		{"no faults pass through", 0, http.StatusOK},
		{"a rate of 1 fails every request", 1, http.StatusServiceUnavailable},
		{"a rate above 1 is 1", 7, http.StatusServiceUnavailable},
		{"a negative rate is 0", -1, http.StatusOK},
		{"NaN is 0", math.NaN(), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewFaults(0, tt.failureRate, 1).Wrap(ok, unavailable)
			require.Equal(t, tt.want, serve(h, t.Context()).Code)
		})
	}

	t.Run("setters change the faults", func(t *testing.T) {
		f := NewFaults(0, 1, 1)
		h := f.Wrap(ok, unavailable)
		f.SetFailureRate(0)
		f.SetLatency(30 * time.Millisecond)
		start := time.Now()
		require.Equal(t, http.StatusOK, serve(h, t.Context()).Code)
		require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	})

	t.Run("a request that ends during the delay gets no answer", func(t *testing.T) {
		called := false
		next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
		h := NewFaults(time.Hour, 0, 1).Wrap(next, unavailable)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		rec := serve(h, ctx)
		require.False(t, called)
		require.False(t, rec.Flushed)
		require.Empty(t, rec.Body.String())
	})

	t.Run("a seed makes failures deterministic", func(t *testing.T) {
		draw := func() []int {
			h := NewFaults(0, 0.5, 7).Wrap(ok, unavailable)
			var codes []int
			for range 30 {
				codes = append(codes, serve(h, t.Context()).Code)
			}
			return codes
		}
		codes := draw()
		require.Equal(t, codes, draw())
		require.Contains(t, codes, http.StatusOK)
		require.Contains(t, codes, http.StatusServiceUnavailable)
	})
}
