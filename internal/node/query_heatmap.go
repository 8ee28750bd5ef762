package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/vigil-health/vigil/internal/node/heatmap"
)

// Heatmap day counts.
const (
	// DefaultHeatmapDays is the seed's 42 days.
	DefaultHeatmapDays = 42
	// MaxHeatmapDays is the longest heatmap, a leap year and a day.
	MaxHeatmapDays = 366
)

// Heatmap returns every known node's daily error rate over the days UTC
// days ending today (oldest first), nil where a day has no row or no rate,
// rows sorted by heatmap.Sort (the seed's weighting). A day without daily
// figures is marked NoData (grey): no stats row, or a row without deltas
// (the node's first day, a restart, a counter reset); a day with deltas but
// no rate had no imports (black). Rows are labelled with the node's
// display name.
func (s *Store) Heatmap(ctx context.Context, now time.Time, days int) (heatmap.Matrix, error) {
	if days < 1 || days > MaxHeatmapDays {
		return heatmap.Matrix{}, fmt.Errorf("heatmap: %d days is not between 1 and %d", days, MaxHeatmapDays)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(days - 1))
	m := heatmap.Matrix{Days: make([]time.Time, days)}
	for i := range m.Days {
		m.Days[i] = first.AddDate(0, 0, i)
	}
	var nodes []struct {
		NodeID     string `db:"node_id"`
		CommonName string `db:"common_name"`
	}
	if err := s.DB.SelectContext(ctx, &nodes, `
		SELECT n.node_id, COALESCE(ns.common_name, '') AS common_name
		FROM `+knownNodes+` n LEFT JOIN node_settings ns ON ns.node_id = n.node_id`); err != nil {
		return m, fmt.Errorf("heatmap nodes: %w", err)
	}
	sort.Slice(nodes, func(i, j int) bool { return LessNodeID(nodes[i].NodeID, nodes[j].NodeID) })
	index := make(map[string]int, len(nodes))
	m.Rows = make([]heatmap.Row, len(nodes))
	for i, n := range nodes {
		index[n.NodeID] = i
		m.Rows[i] = heatmap.Row{Label: DisplayName(n.NodeID, n.CommonName), Rates: make([]*float64, days), NoData: make([]bool, days)}
		for j := range m.Rows[i].NoData {
			m.Rows[i].NoData[j] = true
		}
	}
	rows, err := s.DB.QueryxContext(ctx, `
		SELECT node_id, (day - $1::date) AS i, daily_error_rate::float8
		FROM node_daily_stats
		WHERE day >= $1::date AND day <= $2::date AND daily_imported IS NOT NULL`,
		first.Format(time.DateOnly), today.Format(time.DateOnly))
	if err != nil {
		return m, fmt.Errorf("heatmap rates: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id   string
			i    int
			rate *float64
		)
		if err := rows.Scan(&id, &i, &rate); err != nil {
			return m, fmt.Errorf("heatmap rate: %w", err)
		}
		if r, ok := index[id]; ok && i >= 0 && i < days {
			m.Rows[r].Rates[i], m.Rows[r].NoData[i] = rate, false
		}
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("heatmap rates: %w", err)
	}
	heatmap.Sort(&m)
	return m, nil
}
