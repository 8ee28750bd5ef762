package node_test

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node"
)

func TestOverlay(t *testing.T) {
	now := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		name         string
		headline     string
		conditions   []string
		lastChecked  *time.Time
		wantHeadline string
		want         []string
	}{
		{"fresh", "ONLINE", []string{"ONLINE"}, at(time.Hour), "ONLINE", []string{"ONLINE"}},
		{"exactly 24h is not a gap", "ONLINE", []string{"ONLINE"}, at(24 * time.Hour), "ONLINE", []string{"ONLINE"}},
		{"just over 24h", "ONLINE", []string{"ONLINE"}, at(24*time.Hour + time.Second), "GAP IN MONITORING",
			[]string{"GAP IN MONITORING", "ONLINE"}},
		{"never checked", "", nil, nil, "GAP IN MONITORING", []string{"GAP IN MONITORING"}},
		{"already a gap", "GAP IN MONITORING", []string{"GAP IN MONITORING", "OFFLINE"}, at(48 * time.Hour),
			"GAP IN MONITORING", []string{"GAP IN MONITORING", "OFFLINE"}},
		{"precedence order", "TESTING", []string{"DWH OUTDATED", "OFFLINE", "TESTING"}, at(time.Minute),
			"TESTING", []string{"TESTING", "OFFLINE", "DWH OUTDATED"}},
		{"outdated alone keeps the stored headline", "", []string{"DWH OUTDATED"}, at(time.Minute), "", []string{"DWH OUTDATED"}},
		{"duplicates dropped", "OFFLINE", []string{"OFFLINE", "OFFLINE"}, at(time.Minute), "OFFLINE", []string{"OFFLINE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, c := node.Overlay(tc.headline, tc.conditions, tc.lastChecked, now)
			require.Equal(t, tc.wantHeadline, h)
			require.Equal(t, tc.want, c)
		})
	}
}

func TestLessNodeID(t *testing.T) {
	ids := []string{"10", "b", "2", "a", "1", "02"}
	sort.Slice(ids, func(i, j int) bool { return node.LessNodeID(ids[i], ids[j]) })
	require.Equal(t, []string{"1", "02", "2", "10", "a", "b"}, ids)
}
