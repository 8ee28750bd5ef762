package node

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/csvsafe"
)

// Export kinds: the seed's yearly files.
const (
	// ExportStats is <id>_stats_<year>.csv: one row per day.
	ExportStats = "stats"
	// ExportErrors is <id>_errors_<year>.csv: errors of the year, newest
	// first.
	ExportErrors = "errors"
	// ExportResources is the resource change log of the year, oldest
	// first (the seed's <id>_log_<resource>.log files in one table).
	ExportResources = "resources"
)

// ExportKinds are the export kinds.
var ExportKinds = []string{ExportStats, ExportErrors, ExportResources}

// Export years.
const (
	MinExportYear = 1970
	MaxExportYear = 9999
)

// Null is how an export writes a missing value (the seed's "-").
const Null = "-"

// exportHeaders are the seed's CSV columns of each kind.
var exportHeaders = map[string][]string{
	ExportStats: {"date", "last_contact", "last_start", "last_write", "last_reject", "imported", "updated", "invalid",
		"failed", "error_rate", "daily_imported", "daily_updated", "daily_invalid", "daily_failed", "daily_error_rate"},
	ExportErrors:    {"timestamp", "repeats", "content"},
	ExportResources: {"changed_at", "resource", "key", "old", "new"},
}

// ts formats a timestamptz column as RFC 3339 UTC text (seconds).
func ts(col string) string {
	return `to_char(` + col + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`
}

// exportQueries select every column as text, NULL for a missing value; $1
// is the node, $2 and $3 the year's bounds.
var exportQueries = map[string]string{
	ExportStats: `SELECT ` + ts("checked_at") + `, ` + ts("last_contact") + `, ` + ts("last_start") + `, ` +
		ts("last_write") + `, ` + ts("last_reject") + `, imported::text, updated::text, invalid::text, failed::text,
		error_rate::text, daily_imported::text, daily_updated::text, daily_invalid::text, daily_failed::text,
		daily_error_rate::text
		FROM node_daily_stats
		WHERE node_id = $1 AND day >= ($2::timestamptz AT TIME ZONE 'UTC')::date AND day < ($3::timestamptz AT TIME ZONE 'UTC')::date
		ORDER BY day`,
	ExportErrors: `SELECT ` + ts("error_at") + `, repeats::text, content
		FROM node_import_errors
		WHERE node_id = $1 AND error_at >= $2 AND error_at < $3
		ORDER BY error_at DESC, content_hash`,
	ExportResources: `SELECT ` + ts("changed_at") + `, resource, key, COALESCE(old_value, 'NEW'), COALESCE(new_value, 'DELETED')
		FROM node_resource_changes
		WHERE node_id = $1 AND changed_at >= $2 AND changed_at < $3
		ORDER BY changed_at, id`,
}

// Export is an open yearly export: its rows are read from Postgres as they
// are written, never held in memory. Close it.
type Export struct {
	kind string
	rows *sqlx.Rows
}

// OpenExport runs the export query of kind for a node's year (UTC). Errors
// of the query itself come from here, before anything is written.
func (s *Store) OpenExport(ctx context.Context, nodeID string, year int, kind string) (*Export, error) {
	if !slices.Contains(ExportKinds, kind) {
		return nil, fmt.Errorf("export: unknown kind %q", kind)
	}
	if year < MinExportYear || year > MaxExportYear {
		return nil, fmt.Errorf("export: year %d out of range", year)
	}
	from := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	rows, err := s.DB.QueryxContext(ctx, exportQueries[kind], nodeID, from, from.AddDate(1, 0, 0))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", kind, err)
	}
	return &Export{kind: kind, rows: rows}, nil
}

// Header is the export's CSV header.
func (e *Export) Header() []string { return slices.Clone(exportHeaders[e.kind]) }

// WriteCSV writes the header and every row to w, separated by ';', with
// Null for missing values, and returns how many rows it wrote. Text a node
// reported (error content, resource keys and values) can start like a
// spreadsheet formula; csvsafe prefixes such cells with ' so the file opens
// as data.
func (e *Export) WriteCSV(w io.Writer) (int, error) {
	cw := csvsafe.NewWriter(w)
	cw.Comma = ';'
	header := exportHeaders[e.kind]
	if err := cw.Write(header); err != nil {
		return 0, fmt.Errorf("export header: %w", err)
	}
	vals := make([]sql.NullString, len(header))
	dst := make([]any, len(header))
	for i := range vals {
		dst[i] = &vals[i]
	}
	record := make([]string, len(header))
	n := 0
	for e.rows.Next() {
		if err := e.rows.Scan(dst...); err != nil {
			return n, fmt.Errorf("export row: %w", err)
		}
		for i, v := range vals {
			record[i] = Null
			if v.Valid {
				record[i] = v.String
			}
		}
		if err := cw.Write(record); err != nil {
			return n, fmt.Errorf("export write: %w", err)
		}
		n++
	}
	if err := e.rows.Err(); err != nil {
		return n, fmt.Errorf("export rows: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return n, fmt.Errorf("export flush: %w", err)
	}
	return n, nil
}

// Close releases the export's rows.
func (e *Export) Close() error { return e.rows.Close() }
