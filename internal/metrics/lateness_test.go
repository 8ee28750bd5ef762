package metrics_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/metrics"
)

func TestObserveLateness(t *testing.T) {
	tests := []struct {
		name    string
		late    []time.Duration
		wantN   int
		wantSum float64
	}{
		{"late pages", []time.Duration{250 * time.Millisecond, 2 * time.Second}, 2, 2.25},
		{"early (clock skew) counts as on time", []time.Duration{-time.Second}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.New()
			m := reg.Incidents()
			for _, d := range tt.late {
				m.ObserveLateness(d)
			}
			families, err := reg.Gatherer().Gather()
			require.NoError(t, err)
			var n int
			var sum float64
			for _, f := range families {
				if f.GetName() == "vigil_escalation_lateness_seconds" {
					h := f.GetMetric()[0].GetHistogram()
					n, sum = int(h.GetSampleCount()), h.GetSampleSum()
				}
			}
			require.Equal(t, tt.wantN, n)
			require.InDelta(t, tt.wantSum, sum, 1e-9)
		})
	}
}
