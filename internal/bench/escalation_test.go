package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAlignedWait(t *testing.T) {
	target := time.Date(2026, 11, 22, 9, 1, 0, 0, time.UTC)
	tests := []struct {
		name    string
		before  time.Duration // now = target - before
		minWait time.Duration
		want    int
	}{
		{"whole seconds before", 45 * time.Second, 30 * time.Second, 45},
		{"a fraction rounds up: due within the second after target", 44*time.Second + 300*time.Millisecond, 30 * time.Second, 45},
		{"never below the shortest wait", 10 * time.Second, 30 * time.Second, 30},
		{"past the target", -5 * time.Second, 30 * time.Second, 30},
		{"a fractional shortest wait rounds up", 0, 1500 * time.Millisecond, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := alignedWait(target, target.Add(-tt.before), tt.minWait)
			require.Equal(t, tt.want, got)
			if tt.before >= tt.minWait {
				due := target.Add(-tt.before).Add(time.Duration(got) * time.Second)
				require.False(t, due.Before(target))
				require.Less(t, due.Sub(target), time.Second)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 .. 1, unsorted
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{N: 1, P50: 7, P99: 7, Max: 7}},
		{"hundred", ms(hundred...), Latency{N: 100, P50: 51, P99: 100, Max: 100}},
		{"negative lateness kept", ms(-3, 5, 9), Latency{N: 3, P50: 5, P99: 9, Max: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, summarize(tt.in))
		})
	}
}

func TestEscalationSteps(t *testing.T) {
	require.JSONEq(t,
		`[{"wait_seconds": 42, "target": "next_in_role"}, {"wait_seconds": 3600, "target": "failsafe"}]`,
		escalationSteps(42))
}
