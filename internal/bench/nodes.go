package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	temporalclient "go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/heatmap"
	"github.com/vigil-health/vigil/workflows"
)

// NodesOptions configures `vigil bench nodes`: a stack whose broker is a
// simulated fleet of Nodes nodes.
type NodesOptions struct {
	DB        *sqlx.DB
	Temporal  temporalclient.Client
	TaskQueue string
	// Nodes is the simulated fleet's size (for the report).
	Nodes int
	// Scans is how many fleet scans are measured, one after another.
	Scans int
}

// NodesReport is what `vigil bench nodes` measured.
type NodesReport struct {
	Nodes int          `json:"nodes"`
	Scans []ScanReport `json:"scans"`
	// Heatmap render times over nodes × 42 days of stored daily rows.
	HeatmapRows  int     `json:"heatmap_rows"`
	HeatmapQuery float64 `json:"heatmap_query_ms"`
	HeatmapPNG   float64 `json:"heatmap_png_ms"`
	HeatmapSVG   float64 `json:"heatmap_svg_ms"`
}

// ScanReport is one measured fleet scan.
type ScanReport struct {
	ScanID string `json:"scan_id"`
	// FetchSeconds is the FleetScan workflow's run: listing, fetching and
	// signalling every node.
	FetchSeconds float64 `json:"fetch_seconds"`
	// Seconds is from the scan's start until every node workflow has
	// recorded the scan's observation in Postgres.
	Seconds     float64 `json:"seconds"`
	Failed      int     `json:"failed"`
	RowsWritten int64   `json:"rows_written"`
	RowsPerSec  float64 `json:"rows_per_s"`
}

// nodeTables are the tables a scan writes.
var nodeTables = []string{"broker_scans", "node_observations", "broker_nodes", "node_daily_stats", "node_import_errors", "node_resources", "node_resource_changes", "node_status_history", "node_mail_log"}

// Nodes runs Scans fleet scans as the Schedule would, each measured until
// every node's workflow has recorded it, then renders the heatmap.
func Nodes(ctx context.Context, o NodesOptions, progress io.Writer) (*NodesReport, error) {
	rep := &NodesReport{Nodes: o.Nodes}
	for i := range o.Scans {
		before, err := rowsWritten(ctx, o.DB)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		run, err := o.Temporal.ExecuteWorkflow(ctx, temporalclient.StartWorkflowOptions{
			ID: fmt.Sprintf("bench-fleet-scan-%d-%d", start.UnixNano(), i), TaskQueue: o.TaskQueue,
			StaticSummary: workflows.FleetScanSummary + " (benchmark)",
		}, workflows.FleetScan, &workflows.FleetScanInput{})
		if err != nil {
			return nil, fmt.Errorf("start fleet scan: %w", err)
		}
		var res workflows.FleetScanResult
		if err := run.Get(ctx, &res); err != nil {
			return nil, fmt.Errorf("fleet scan: %w", err)
		}
		fetched := time.Since(start)
		for {
			var done int
			if err := o.DB.GetContext(ctx, &done, `SELECT count(*) FROM broker_nodes WHERE last_scan_id = $1`, res.ScanID); err != nil {
				return nil, fmt.Errorf("count recorded nodes: %w", err)
			}
			if done >= res.Nodes {
				break
			}
			if time.Since(start) > 10*time.Minute {
				return nil, fmt.Errorf("scan %s: only %d of %d nodes recorded after 10 minutes", res.ScanID, done, res.Nodes)
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		after, err := settledRowsWritten(ctx, o.DB)
		if err != nil {
			return nil, err
		}
		s := ScanReport{ScanID: res.ScanID, FetchSeconds: fetched.Seconds(), Seconds: elapsed.Seconds(), Failed: res.Failed, RowsWritten: after - before}
		s.RowsPerSec = float64(s.RowsWritten) / s.Seconds
		rep.Scans = append(rep.Scans, s)
		_, _ = fmt.Fprintf(progress, "scan %d: %d nodes fetched and signalled in %.2f s, recorded in %.2f s, %d rows (%.0f rows/s)\n", i+1, res.Nodes, s.FetchSeconds, s.Seconds, s.RowsWritten, s.RowsPerSec)
	}
	if err := fillHistory(ctx, o.DB, 42); err != nil {
		return nil, err
	}
	store := &node.Store{DB: o.DB}
	t0 := time.Now()
	m, err := store.Heatmap(ctx, time.Now(), 42)
	if err != nil {
		return nil, fmt.Errorf("heatmap query: %w", err)
	}
	rep.HeatmapQuery = ms(time.Since(t0))
	rep.HeatmapRows = len(m.Rows)
	for _, f := range []heatmap.Format{heatmap.PNG, heatmap.SVG} {
		t := time.Now()
		if err := heatmap.Render(io.Discard, f, m); err != nil {
			return nil, fmt.Errorf("render heatmap: %w", err)
		}
		if f == heatmap.PNG {
			rep.HeatmapPNG = ms(time.Since(t))
		} else {
			rep.HeatmapSVG = ms(time.Since(t))
		}
	}
	return rep, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rowsWritten sums the rows inserted, updated and deleted in the node tables
// since the statistics were reset, as Postgres counts them.
func rowsWritten(ctx context.Context, db *sqlx.DB) (int64, error) {
	var n int64
	err := db.GetContext(ctx, &n, `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables WHERE relname = ANY($1)`, pq.Array(nodeTables))
	if err != nil {
		return 0, fmt.Errorf("read table statistics: %w", err)
	}
	return n, nil
}

// settledRowsWritten waits for the workers' connections to flush their
// table statistics (Postgres does so within about ten seconds of going idle)
// and returns the total.
func settledRowsWritten(ctx context.Context, db *sqlx.DB) (int64, error) {
	last, err := rowsWritten(ctx, db)
	if err != nil {
		return 0, err
	}
	stable := 0
	for range 30 {
		time.Sleep(time.Second)
		n, err := rowsWritten(ctx, db)
		if err != nil {
			return 0, err
		}
		if n == last {
			stable++
			if stable >= 12 {
				break
			}
		} else {
			stable, last = 0, n
		}
	}
	return last, nil
}

// fillHistory gives every node days-1 earlier days of daily rows with a
// spread of error rates (and some days without imports), so the heatmap is
// measured at full size.
func fillHistory(ctx context.Context, db *sqlx.DB, days int) error {
	_, err := db.ExecContext(ctx, `
INSERT INTO node_daily_stats (node_id, day, checked_at, daily_imported, daily_updated, daily_invalid, daily_failed, daily_error_rate)
SELECT n.node_id, d::date, d, 100, 0, 0, 0,
       CASE WHEN (hashtext(n.node_id) + g) % 9 = 0 THEN NULL
            ELSE round((abs(hashtext(n.node_id || g::text)) % 1500) / 100.0, 2) END
FROM broker_nodes n,
     generate_series(1, $1 - 1) AS g,
     LATERAL (SELECT (current_date - g)::timestamptz AS d) x
ON CONFLICT (node_id, day) DO NOTHING`, days)
	if err != nil {
		return fmt.Errorf("fill heatmap history: %w", err)
	}
	return nil
}
