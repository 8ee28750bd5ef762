//go:build integration

package api_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

// The package's database is shared with other tests, which may run watches.
// These tests insert services with ids of their own (T-WQ-<random>-...) and
// only assert about those, or filter changes by a watch id of their own.

// wrService is a service_statuses row to insert.
type wrService struct {
	Suffix, Name, Capacity string
	Easting, Northing      *int
}

// wrInsertServices inserts services named prefix+Suffix and returns the
// prefix.
func wrInsertServices(t *testing.T, rows ...wrService) string {
	t.Helper()
	prefix := "T-WQ-" + uuid.NewString()[:8] + "-"
	seen := time.Date(2026, 7, 15, 9, 0, 0, 0, time.UTC)
	for _, r := range rows {
		_, err := env.DB.ExecContext(context.Background(), `
			INSERT INTO service_statuses (service_id, name, type, postcode, region, easting, northing,
				capacity, rag, updated_by, updated_at, last_seen_at, watch_id)
			VALUES ($1, $2, 'ED', 'SW1A 0AA', 'London', $3, $4, $5, 'AMBER', 'ROBOT', $6, $6, $7)`,
			prefix+r.Suffix, r.Name, r.Easting, r.Northing, r.Capacity, seen, uuid.NewString())
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		_, _ = env.DB.Exec(`DELETE FROM service_statuses WHERE service_id LIKE $1`, prefix+"%")
	})
	return prefix
}

// wrMine returns the service ids of list that start with prefix, in order.
func wrMine(list []map[string]any, prefix string) []string {
	var out []string
	for _, s := range list {
		if id, _ := s["service_id"].(string); len(id) > len(prefix) && id[:len(prefix)] == prefix {
			out = append(out, id[len(prefix):])
		}
	}
	return out
}

// wrKeys returns m's keys, sorted.
func wrKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestWatchesRead_RefusesWithoutAToken(t *testing.T) {
	s := startStack(t)
	for _, path := range []string{"/v1/statuses", "/v1/changes", "/v1/coverage"} {
		t.Run(path, func(t *testing.T) {
			var body api.ErrorBody
			resp := s.call(t, "GET", path, "", "", &body)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, api.CodeUnauthorized, body.Error.Code)
			require.Equal(t, `Bearer realm="vigil"`, resp.Header.Get("WWW-Authenticate"))

			resp = s.call(t, "GET", path, "not-a-token", "", &body)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
}

func TestWatchesRead_BadInputNamesTheField(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	tests := []struct {
		name  string
		path  string
		field string
	}{
		{"unknown capacity", "/v1/statuses?capacity=LOW,FULL", "capacity"},
		{"empty capacity", "/v1/statuses?capacity=", "capacity"},
		{"lower-case capacity", "/v1/statuses?capacity=low", "capacity"},
		{"stored form of reset", "/v1/statuses?capacity=LOW,", "capacity"},
		{"bad service id", "/v1/changes?service_id=" + url.QueryEscape("a b"), "service_id"},
		{"empty service id", "/v1/changes?service_id=", "service_id"},
		{"watch id not a uuid", "/v1/changes?watch_id=W1", "watch_id"},
		{"bad from", "/v1/changes?from=15/07/2026", "from"},
		{"bad to", "/v1/changes?to=now", "to"},
		{"from after to", "/v1/changes?from=2026-07-15T10:00:00Z&to=2026-07-14T10:00:00Z", "from"},
		{"limit zero", "/v1/changes?limit=0", "limit"},
		{"limit too large", "/v1/changes?limit=201", "limit"},
		{"limit not a number", "/v1/changes?limit=ten", "limit"},
		{"bad cursor", "/v1/changes?cursor=abc", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body api.ErrorBody
			resp := s.call(t, "GET", tt.path, token, "", &body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, api.CodeInvalidField, body.Error.Code)
			require.Equal(t, tt.field, body.Error.Field)
			require.NotEmpty(t, body.Error.Message)
		})
	}
}

func TestWatchesRead_Statuses(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	prefix := wrInsertServices(t,
		wrService{Suffix: "HIGH", Name: "A high", Capacity: "HIGH"},
		wrService{Suffix: "RESET", Name: "A reset", Capacity: ""},
		wrService{Suffix: "LOW", Name: "A low", Capacity: "LOW"},
		wrService{Suffix: "NONE", Name: "A none", Capacity: "NONE"},
	)
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"default: services not at HIGH, most urgent first", "", []string{"NONE", "LOW", "RESET"}},
		{"LOW and NONE", "?capacity=LOW,NONE", []string{"NONE", "LOW"}},
		{"repeated parameter", "?capacity=NONE&capacity=RESET", []string{"NONE", "RESET"}},
		{"reset", "?capacity=RESET", []string{"RESET"}},
		{"HIGH", "?capacity=HIGH", []string{"HIGH"}},
		{"every capacity", "?capacity=HIGH,LOW,NONE,RESET", []string{"NONE", "LOW", "RESET", "HIGH"}},
		{"duplicates are harmless", "?capacity=LOW,LOW", []string{"LOW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Services []map[string]any `json:"services"`
			}
			resp := s.call(t, "GET", "/v1/statuses"+tt.query, token, "", &body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.NotNil(t, body.Services)
			require.Equal(t, tt.want, wrMine(body.Services, prefix))
		})
	}
	t.Run("shape", func(t *testing.T) {
		var body struct {
			Services []map[string]any `json:"services"`
		}
		resp := s.call(t, "GET", "/v1/statuses?capacity=RESET", token, "", &body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		i := slices.IndexFunc(body.Services, func(m map[string]any) bool { return m["service_id"] == prefix+"RESET" })
		require.GreaterOrEqual(t, i, 0)
		got := body.Services[i]
		require.Equal(t, []string{"capacity", "easting", "last_seen_at", "name", "northing", "postcode", "rag", "region",
			"service_id", "type", "updated_at", "updated_by", "watch_id"}, wrKeys(got))
		require.Equal(t, "", got["capacity"], "reset is stored and served as an empty capacity")
		require.Equal(t, "A reset", got["name"])
		require.Equal(t, "AMBER", got["rag"])
		require.Equal(t, "ROBOT", got["updated_by"])
		require.Equal(t, "2026-07-15T09:00:00Z", got["last_seen_at"])
		require.Nil(t, got["easting"])
	})
}

func TestWatchesRead_ChangesPaginates(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	watch := uuid.NewString()
	svc := "T-WQ-" + uuid.NewString()[:8]
	base := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	var want []float64
	for i := range 5 {
		var id int64
		// Two changes share each instant, so pages split ties.
		err := env.DB.QueryRow(`
			INSERT INTO status_changes (watch_id, service_id, name, type, region, previous_capacity, previous_rag,
				capacity, rag, kind, changed_by, changed_at, detected_at, poll_id, notified)
			VALUES ($1, $2, 'Test ED', 'ED', 'London', 'HIGH', 'GREEN', 'LOW', 'AMBER', 'change', 'nurse', $3, $3, $4, true)
			RETURNING id`,
			watch, svc, base.Add(time.Duration(i/2)*time.Minute), uuid.NewString()).Scan(&id)
		require.NoError(t, err)
		want = append(want, float64(id))
	}
	// Newest first; ties by id, descending: the insertion order reversed.
	slices.Reverse(want)

	q := url.Values{"watch_id": {watch}, "limit": {"2"}}
	var got []float64
	pages := 0
	for {
		var body struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		resp := s.call(t, "GET", "/v1/changes?"+q.Encode(), token, "", &body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.LessOrEqual(t, len(body.Items), 2)
		pages++
		for _, it := range body.Items {
			got = append(got, it["id"].(float64))
		}
		if pages == 1 {
			require.Equal(t, []string{"capacity", "changed_at", "changed_by", "detected_at", "id", "kind", "name", "notified",
				"poll_id", "previous_capacity", "previous_rag", "rag", "region", "service_id", "type", "watch_id"}, wrKeys(body.Items[0]))
			require.Equal(t, watch, body.Items[0]["watch_id"])
			require.Equal(t, svc, body.Items[0]["service_id"])
			require.Equal(t, "HIGH", body.Items[0]["previous_capacity"])
			require.Equal(t, "LOW", body.Items[0]["capacity"])
			require.Equal(t, "2026-07-15T10:02:00Z", body.Items[0]["detected_at"])
		}
		if body.NextCursor == nil {
			break
		}
		q.Set("cursor", *body.NextCursor)
	}
	require.Equal(t, want, got, "every change once, in order")
	require.Equal(t, 3, pages)

	tests := []struct {
		name  string
		query url.Values
		count int
	}{
		{"by service", url.Values{"service_id": {svc}}, 5},
		{"by service and window", url.Values{"service_id": {svc}, "from": {"2026-07-15T10:01:00Z"}, "to": {"2026-07-15T10:02:00Z"}}, 2},
		{"offset in the time", url.Values{"watch_id": {watch}, "from": {"2026-07-15T11:01:00+01:00"}}, 3},
		{"another watch", url.Values{"watch_id": {uuid.NewString()}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Items      []map[string]any `json:"items"`
				NextCursor *string          `json:"next_cursor"`
			}
			resp := s.call(t, "GET", "/v1/changes?"+tt.query.Encode(), token, "", &body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.NotNil(t, body.Items)
			require.Len(t, body.Items, tt.count)
			require.Nil(t, body.NextCursor)
		})
	}
}

func TestWatchesRead_Coverage(t *testing.T) {
	s := startStack(t)
	token := s.login(t, "n01")
	ptr := func(v int) *int { return &v }
	prefix := wrInsertServices(t,
		wrService{Suffix: "BIGBEN", Name: "Westminster", Capacity: "LOW", Easting: ptr(530268), Northing: ptr(179640)},
		wrService{Suffix: "NOWHERE", Name: "Unplaced", Capacity: "HIGH"},
		wrService{Suffix: "OFFGRID", Name: "Offshore", Capacity: "NONE", Easting: ptr(800000), Northing: ptr(179640)},
	)
	var body struct {
		Services []map[string]any `json:"services"`
	}
	resp := s.call(t, "GET", "/v1/coverage", token, "", &body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	byID := map[string]map[string]any{}
	for _, svc := range body.Services {
		byID[svc["service_id"].(string)] = svc
	}
	bb := byID[prefix+"BIGBEN"]
	require.NotNil(t, bb)
	require.Equal(t, []string{"capacity", "easting", "last_seen_at", "lat", "lon", "name", "northing", "postcode", "rag",
		"region", "service_id", "type"}, wrKeys(bb))
	require.InDelta(t, 51.5007, bb["lat"], 1e-4)
	require.InDelta(t, -0.1246, bb["lon"], 1e-4)
	require.EqualValues(t, 530268, bb["easting"])
	require.EqualValues(t, 179640, bb["northing"])
	require.Equal(t, "LOW", bb["capacity"])
	require.Equal(t, "SW1A 0AA", bb["postcode"])
	require.Equal(t, "London", bb["region"])
	for _, id := range []string{"NOWHERE", "OFFGRID"} {
		svc := byID[prefix+id]
		require.NotNil(t, svc, id)
		require.Contains(t, svc, "lat")
		require.Nil(t, svc["lat"], id)
		require.Nil(t, svc["lon"], id)
	}
}
