//go:build integration

package watch_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/internal/watch"
)

// db is this package's fresh, migrated database. Tests that read every
// service status empty service_statuses first; change tests use watch and
// service ids of their own.
var db *sqlx.DB

func TestMain(m *testing.M) { os.Exit(testenv.RunDB(m, "watch", &db, nil)) }

func store() *watch.Store { return &watch.Store{DB: db} }

// status is a service_statuses row to insert.
type status struct {
	ID, Name, Capacity string
	Easting, Northing  *int
}

// resetStatuses empties service_statuses and inserts rows.
func resetStatuses(t *testing.T, rows ...status) {
	t.Helper()
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `DELETE FROM service_statuses`)
	require.NoError(t, err)
	seen := time.Date(2026, 7, 15, 9, 0, 0, 0, time.UTC)
	for _, r := range rows {
		_, err := db.ExecContext(ctx, `
			INSERT INTO service_statuses (service_id, name, type, postcode, region, easting, northing,
				capacity, rag, updated_by, updated_at, last_seen_at, watch_id)
			VALUES ($1, $2, 'ED', 'LS1 4AP', 'Yorkshire', $3, $4, $5, 'R', 'nurse', $6, $6, $7)`,
			r.ID, r.Name, r.Easting, r.Northing, r.Capacity, seen, uuid.NewString())
		require.NoError(t, err)
	}
}

// change is a status_changes row to insert.
type change struct {
	WatchID, ServiceID string
	At                 time.Time
	Capacity           string
}

// insertChanges writes changes and returns their ids, in order.
func insertChanges(t *testing.T, rows ...change) []int64 {
	t.Helper()
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		var id int64
		err := db.QueryRowContext(context.Background(), `
			INSERT INTO status_changes (watch_id, service_id, name, type, region, previous_capacity, previous_rag,
				capacity, rag, kind, changed_by, changed_at, detected_at, poll_id, notified)
			VALUES ($1, $2, 'Leeds ED', 'ED', 'Yorkshire', 'HIGH', 'G', $3, 'R', 'change', 'nurse', NULL, $4, $5, true)
			RETURNING id`,
			r.WatchID, r.ServiceID, r.Capacity, r.At, uuid.NewString()).Scan(&id)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

func serviceIDs(sts []watch.Status) []string {
	out := make([]string, 0, len(sts))
	for _, s := range sts {
		out = append(out, s.ServiceID)
	}
	return out
}

func changeIDs(cs []watch.RecordedChange) []int64 {
	out := make([]int64, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestStatusesFiltersAndOrders(t *testing.T) {
	resetStatuses(t,
		status{ID: "S-HIGH-A", Name: "Alpha", Capacity: "HIGH"},
		status{ID: "S-LOW-B", Name: "Bravo", Capacity: "LOW"},
		status{ID: "S-NONE-Z", Name: "Zulu", Capacity: "NONE"},
		status{ID: "S-RESET-C", Name: "Charlie", Capacity: ""},
		status{ID: "S-LOW-A", Name: "Alpha", Capacity: "LOW"},
		status{ID: "S-NONE-A2", Name: "Alpha", Capacity: "NONE"},
		status{ID: "S-NONE-A1", Name: "Alpha", Capacity: "NONE"},
	)
	tests := []struct {
		name       string
		capacities []string
		want       []string
	}{
		{"every service", nil, []string{"S-NONE-A1", "S-NONE-A2", "S-NONE-Z", "S-LOW-A", "S-LOW-B", "S-RESET-C", "S-HIGH-A"}},
		{"not at HIGH", []string{"LOW", "NONE", ""}, []string{"S-NONE-A1", "S-NONE-A2", "S-NONE-Z", "S-LOW-A", "S-LOW-B", "S-RESET-C"}},
		{"order of the filter does not matter", []string{"", "NONE", "LOW"}, []string{"S-NONE-A1", "S-NONE-A2", "S-NONE-Z", "S-LOW-A", "S-LOW-B", "S-RESET-C"}},
		{"reset only", []string{""}, []string{"S-RESET-C"}},
		{"HIGH only", []string{"HIGH"}, []string{"S-HIGH-A"}},
		{"LOW only", []string{"LOW"}, []string{"S-LOW-A", "S-LOW-B"}},
		{"no match", []string{"UNKNOWN"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store().Statuses(context.Background(), tt.capacities)
			require.NoError(t, err)
			require.Equal(t, tt.want, serviceIDs(got))
		})
	}
	t.Run("columns", func(t *testing.T) {
		got, err := store().Statuses(context.Background(), []string{""})
		require.NoError(t, err)
		require.Len(t, got, 1)
		s := got[0]
		require.Equal(t, "Charlie", s.Name)
		require.Equal(t, "ED", s.Type)
		require.Equal(t, "LS1 4AP", s.Postcode)
		require.Equal(t, "Yorkshire", s.Region)
		require.Equal(t, "", s.Capacity)
		require.Equal(t, "R", s.RAG)
		require.Equal(t, "nurse", s.UpdatedBy)
		require.NotNil(t, s.UpdatedAt)
		require.Equal(t, time.UTC, s.UpdatedAt.Location())
		require.Equal(t, time.UTC, s.LastSeenAt.Location())
		require.NotNil(t, s.WatchID)
		require.Nil(t, s.Easting)
	})
}

func TestChangesFilters(t *testing.T) {
	base := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	w1, w2 := uuid.NewString(), uuid.NewString()
	svcA, svcB := "CF-A-"+uuid.NewString()[:8], "CF-B-"+uuid.NewString()[:8]
	ids := insertChanges(t,
		change{WatchID: w1, ServiceID: svcA, At: base, Capacity: "LOW"},                      // 0
		change{WatchID: w1, ServiceID: svcB, At: base.Add(time.Minute), Capacity: "NONE"},    // 1
		change{WatchID: w2, ServiceID: svcA, At: base.Add(2 * time.Minute), Capacity: ""},    // 2
		change{WatchID: w2, ServiceID: svcB, At: base.Add(3 * time.Minute), Capacity: "LOW"}, // 3
	)
	tests := []struct {
		name string
		f    watch.ChangeFilter
		want []int64
	}{
		{"one watch", watch.ChangeFilter{WatchID: w1}, []int64{ids[1], ids[0]}},
		{"one service", watch.ChangeFilter{ServiceID: svcA}, []int64{ids[2], ids[0]}},
		{"service and watch", watch.ChangeFilter{ServiceID: svcB, WatchID: w2}, []int64{ids[3]}},
		{"from is inclusive", watch.ChangeFilter{ServiceID: svcA, From: base.Add(2 * time.Minute)}, []int64{ids[2]}},
		{"to is exclusive", watch.ChangeFilter{ServiceID: svcA, To: base.Add(2 * time.Minute)}, []int64{ids[0]}},
		{"window", watch.ChangeFilter{WatchID: w2, From: base, To: base.Add(3 * time.Minute)}, []int64{ids[2]}},
		{"unknown watch", watch.ChangeFilter{WatchID: uuid.NewString()}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := store().Changes(context.Background(), tt.f)
			require.NoError(t, err)
			require.Equal(t, tt.want, changeIDs(page.Items))
			require.Nil(t, page.Next)
		})
	}
	t.Run("columns", func(t *testing.T) {
		page, err := store().Changes(context.Background(), watch.ChangeFilter{ServiceID: svcB, WatchID: w1})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		c := page.Items[0]
		require.Equal(t, w1, c.WatchID)
		require.Equal(t, svcB, c.ServiceID)
		require.Equal(t, "Leeds ED", c.Name)
		require.Equal(t, "HIGH", c.PreviousCapacity)
		require.Equal(t, "G", c.PreviousRAG)
		require.Equal(t, "NONE", c.Capacity)
		require.Equal(t, "change", c.Kind)
		require.Equal(t, "nurse", c.ChangedBy)
		require.Nil(t, c.ChangedAt)
		require.True(t, c.Notified)
		require.Equal(t, time.UTC, c.DetectedAt.Location())
		require.True(t, base.Add(time.Minute).Equal(c.DetectedAt))
	})
}

func TestChangesRejectsBadFilters(t *testing.T) {
	at := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    watch.ChangeFilter
	}{
		{"limit too large", watch.ChangeFilter{Limit: watch.MaxLimit + 1}},
		{"negative limit", watch.ChangeFilter{Limit: -1}},
		{"from after to", watch.ChangeFilter{From: at, To: at.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store().Changes(context.Background(), tt.f)
			require.ErrorIs(t, err, watch.ErrInvalidFilter)
		})
	}
}

func TestChangesPaginatesWithoutGapsOrDuplicates(t *testing.T) {
	base := time.Date(2026, 7, 16, 10, 0, 0, 0, time.UTC)
	watchID := uuid.NewString()
	// 23 changes over 8 distinct instants: many ties on detected_at, which
	// only the id breaks.
	var rows []change
	for i := range 23 {
		rows = append(rows, change{WatchID: watchID, ServiceID: fmt.Sprintf("PG-%02d", i), At: base.Add(time.Duration(i%8) * time.Second), Capacity: "LOW"})
	}
	insertChanges(t, rows...)
	all, err := store().Changes(context.Background(), watch.ChangeFilter{WatchID: watchID, Limit: watch.MaxLimit})
	require.NoError(t, err)
	require.Len(t, all.Items, 23)
	for i := 1; i < len(all.Items); i++ {
		prev, cur := all.Items[i-1], all.Items[i]
		require.True(t, prev.DetectedAt.After(cur.DetectedAt) || (prev.DetectedAt.Equal(cur.DetectedAt) && prev.ID > cur.ID),
			"newest first, ties by id descending")
	}

	for _, limit := range []int{1, 4, 7, 23} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var (
				got    []int64
				cursor *watch.Cursor
				pages  int
			)
			for {
				page, err := store().Changes(context.Background(), watch.ChangeFilter{WatchID: watchID, Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				require.LessOrEqual(t, len(page.Items), limit)
				got = append(got, changeIDs(page.Items)...)
				pages++
				if pages == 1 {
					// A change recorded while paging sorts before the first
					// page, never inside a later one.
					insertChanges(t, change{WatchID: watchID, ServiceID: "PG-late", At: base.Add(time.Hour), Capacity: "NONE"})
				}
				if page.Next == nil {
					break
				}
				// The cursor survives its string form.
				c, err := watch.DecodeCursor(page.Next.Encode())
				require.NoError(t, err)
				cursor = &c
			}
			require.Equal(t, changeIDs(all.Items), got)
			require.Equal(t, (23+limit-1)/limit, pages, "no empty last page")
			_, err := db.Exec(`DELETE FROM status_changes WHERE watch_id = $1 AND service_id = 'PG-late'`, watchID)
			require.NoError(t, err)
		})
	}
}

func TestCoverage(t *testing.T) {
	ptr := func(v int) *int { return &v }
	resetStatuses(t,
		status{ID: "CV-BIGBEN", Name: "Westminster", Capacity: "LOW", Easting: ptr(530268), Northing: ptr(179640)},
		status{ID: "CV-NOWHERE", Name: "Unplaced", Capacity: "HIGH"},
		status{ID: "CV-SEA", Name: "Offshore", Capacity: "NONE", Easting: ptr(999999), Northing: ptr(179640)},
		status{ID: "CV-ZERO", Name: "Zero", Capacity: "", Easting: ptr(0), Northing: ptr(0)},
		status{ID: "CV-HALF", Name: "Half", Capacity: "", Easting: ptr(530268)},
	)
	got, err := store().Coverage(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 5, "every monitored service, placed or not")
	byID := map[string]watch.CoverageService{}
	for _, c := range got {
		byID[c.ServiceID] = c
	}
	bb := byID["CV-BIGBEN"]
	require.NotNil(t, bb.Lat)
	require.NotNil(t, bb.Lon)
	require.InDelta(t, 51.5007, *bb.Lat, 1e-4)
	require.InDelta(t, -0.1246, *bb.Lon, 1e-4)
	require.Equal(t, 530268, *bb.Easting)
	require.Equal(t, "Westminster", bb.Name)
	require.Equal(t, "LOW", bb.Capacity)
	require.Equal(t, "R", bb.RAG)
	require.Equal(t, "ED", bb.Type)
	require.Equal(t, "Yorkshire", bb.Region)
	require.Equal(t, "LS1 4AP", bb.Postcode)
	require.Equal(t, time.UTC, bb.LastSeenAt.Location())
	for _, id := range []string{"CV-NOWHERE", "CV-SEA", "CV-ZERO", "CV-HALF"} {
		require.Nil(t, byID[id].Lat, id)
		require.Nil(t, byID[id].Lon, id)
	}
	require.Equal(t, []string{"CV-HALF", "CV-SEA", "CV-NOWHERE", "CV-BIGBEN", "CV-ZERO"}, func() []string {
		var out []string
		for _, c := range got {
			out = append(out, c.ServiceID)
		}
		return out
	}(), "by region, then name")
}
