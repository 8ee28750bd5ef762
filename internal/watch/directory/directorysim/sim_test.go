package directorysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch/directory"
)

const (
	searchBase = "/app/controllers/api/v1.0/services/byServiceType/"
	byIDBase   = "/app/controllers/api/v1.0/services/byServiceId/"
)

// response is the decoded answer of one request.
type response struct {
	code   int
	header http.Header
	body   map[string]any
	env    struct {
		Success struct {
			Code         int `json:"code"`
			ServiceCount int `json:"serviceCount"`
			Services     []struct {
				ID       json.Number              `json:"id"`
				Name     string                   `json:"name"`
				Type     struct{ ID json.Number } `json:"type"`
				Capacity struct {
					Status  struct{ Human, RAG string }     `json:"status"`
					Updated struct{ By, Date, Time string } `json:"updated"`
				} `json:"capacity"`
			} `json:"services"`
		} `json:"success"`
	}
}

func (r response) ids() []string {
	ids := []string{}
	for _, s := range r.env.Success.Services {
		ids = append(ids, s.ID.String())
	}
	return ids
}

// get sends one request as user (no auth when user is "") to h.
func get(t *testing.T, h http.Handler, user, pass, path string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	r := response{code: rec.Code, header: rec.Header()}
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.NoError(t, json.Unmarshal(body, &r.body), string(body))
	require.NoError(t, json.Unmarshal(body, &r.env))
	return r
}

func search(role, postcode string, miles int, types string, n int) string {
	return fmt.Sprintf("%s%s/%s/%d/0/0/0/0/%s/%d", searchBase, role, url.PathEscape(postcode), miles, types, n)
}

func TestAuth(t *testing.T) {
	h := New(Options{}).Handler()
	path := byIDBase + "2000001"
	tests := []struct {
		name, user, pass string
		want             int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "capmon", "nope", http.StatusUnauthorized},
		{"unknown user", "mallory", "capmon-demo", http.StatusUnauthorized},
		{"valid", "capmon", "capmon-demo", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, h, tt.user, tt.pass, path)
			require.Equal(t, tt.want, r.code)
			if tt.want == http.StatusUnauthorized {
				require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
				require.Contains(t, r.body, "error")
			} else {
				require.Equal(t, []string{"2000001"}, r.ids())
			}
		})
	}
}

func TestSearchFiltering(t *testing.T) {
	h := New(Options{}).Handler()
	tests := []struct {
		name, user, path string
		wantCode         int
		wantIDs          []string
	}{
		{"EDs within 5 miles", "capmon", search("CAPMON", "LS1 4AP", 5, "40", 10), 200, []string{"2000001", "2000002"}},
		{"EDs within 10 miles", "capmon", search("CAPMON", "LS1  4AP", 10, "40", 10), 200, []string{"2000001", "2000002", "2000003", "2000004"}},
		{"limit per type", "capmon", search("CAPMON", "LS1 4AP", 10, "40", 3), 200, []string{"2000001", "2000002", "2000003"}},
		{"two types by distance", "capmon", search("CAPMON", "ls14ap", 2, "40,28", 10), 200, []string{"2000008", "2000001", "2000002", "2000013"}},
		{"limit applies per type", "capmon", search("CAPMON", "LS1 4AP", 2, "40,28", 1), 200, []string{"2000008", "2000001"}},
		{"restricted service visible to its role", "digital", search("DIGITAL_REFERRAL", "LS1 4AP", 2, "28", 10), 200, []string{"2000008", "2000013", "2000010"}},
		{"zero distance", "capmon", search("CAPMON", "LS1 4AP", 0, "40", 10), 200, []string{}},
		{"type elsewhere", "capmon", search("CAPMON", "SW1A 2AA", 2, "100", 10), 200, []string{"4000007", "4000006"}},
		{"unknown postcode", "capmon", search("CAPMON", "ZZ9 9ZZ", 5, "40", 10), 404, []string{}},
		{"bad distance", "capmon", search("CAPMON", "LS1 4AP", -1, "40", 10), 400, []string{}},
		{"bad limit", "capmon", search("CAPMON", "LS1 4AP", 5, "40", 0), 400, []string{}},
		{"unknown endpoint", "capmon", "/app/controllers/api/v1.0/nope", 404, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pass := DefaultAccounts()[tt.user].Password
			r := get(t, h, tt.user, pass, tt.path)
			require.Equal(t, tt.wantCode, r.code, r.body)
			require.Equal(t, tt.wantIDs, r.ids())
			if tt.wantCode == 200 {
				require.Equal(t, 200, r.env.Success.Code)
				require.Equal(t, len(tt.wantIDs), r.env.Success.ServiceCount)
			} else {
				require.Contains(t, r.body, "error")
			}
		})
	}
}

func TestRoundTripThroughClient(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	tests := []struct {
		name string
		now  time.Time
	}{
		{"summer (BST)", time.Date(2024, 7, 1, 23, 34, 56, 0, time.UTC)},
		{"winter (GMT)", time.Date(2024, 1, 9, 8, 5, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New(Options{Now: func() time.Time { return tt.now }})
			base, stop, err := sim.Start("127.0.0.1:0")
			require.NoError(t, err)
			defer stop()
			c, err := directory.NewDoSClient(directory.DoSConfig{
				BaseURL: base,
				Accounts: map[string]directory.Account{
					PathwaysRole: {Username: "pathways", Password: "pathways-demo"},
					DigitalRole:  {Username: "digital", Password: "digital-demo"},
				},
				DefaultRole: PathwaysRole, FallbackRole: DigitalRole, RatePerSecond: 1000,
			})
			require.NoError(t, err)
			require.NoError(t, sim.SetCapacity("2000002", directory.CapacityNone, "a.nurse"))

			want := directory.Service{
				ID: "2000002", Name: "St James's University Hospital Emergency Department",
				Type: TypeNameEmergencyDepartment, Postcode: "LS9 7TF", Region: "Yorkshire and the Humber",
				Easting: 432100, Northing: 435300, Capacity: "NONE", RAG: "RED", UpdatedBy: "a.nurse",
				UpdatedAt: tt.now.Truncate(time.Minute),
			}
			got, err := c.Service(context.Background(), "2000002")
			require.NoError(t, err)
			require.Equal(t, want, *got)

			found, err := c.Search(context.Background(), directory.SearchQuery{
				Postcode: "LS1 4AP", DistanceMiles: 5, ServiceTypes: []string{"40"}, ResultsLimit: 5,
			})
			require.NoError(t, err)
			require.Len(t, found, 2)
			require.Equal(t, want, found[1])

			// Every demo service survives the round trip.
			for _, svc := range DemoServices() {
				if svc.ID == want.ID {
					continue
				}
				got, err := c.Service(context.Background(), svc.ID)
				require.NoError(t, err, svc.ID)
				require.Equal(t, svc.Name, got.Name)
				require.Equal(t, svc.Easting, got.Easting)
				require.Equal(t, RAG(got.Capacity), got.RAG)
				require.Equal(t, svc.UpdatedAt.Truncate(time.Minute), got.UpdatedAt, svc.ID)
			}
			// The wire format is London wall time.
			r := get(t, sim.Handler(), "pathways", "pathways-demo", byIDBase+"2000002")
			upd := r.env.Success.Services[0].Capacity.Updated
			require.Equal(t, tt.now.In(london).Format("02/01/2006"), upd.Date)
			require.Equal(t, tt.now.In(london).Format("15:04"), upd.Time)
		})
	}
}

func TestScripting(t *testing.T) {
	now := time.Date(2024, 8, 12, 23, 20, 0, 0, time.UTC) // 00:20 on 13/08 in London
	tests := []struct {
		name    string
		act     func(*Simulator) error
		check   func(*testing.T, response)
		wantErr bool
	}{
		{
			name: "SetCapacity records who and when",
			act:  func(s *Simulator) error { return s.SetCapacity("2000001", directory.CapacityLow, "j.doe") },
			check: func(t *testing.T, r response) {
				c := r.env.Success.Services[0].Capacity
				require.Equal(t, "LOW", c.Status.Human)
				require.Equal(t, "AMBER", c.Status.RAG)
				require.Equal(t, "j.doe", c.Updated.By)
				require.Equal(t, "13/08/2024", c.Updated.Date)
				require.Equal(t, "00:20", c.Updated.Time)
			},
		},
		{
			name: "RobotReset",
			act:  func(s *Simulator) error { return s.RobotReset("2000001") },
			check: func(t *testing.T, r response) {
				c := r.env.Success.Services[0].Capacity
				require.Empty(t, c.Status.Human)
				require.Empty(t, c.Status.RAG)
				require.Equal(t, directory.RobotUser, c.Updated.By)
				require.Equal(t, "00:20", c.Updated.Time)
			},
		},
		{
			name: "Remove hides the service",
			act:  func(s *Simulator) error { return s.Remove("2000001") },
			check: func(t *testing.T, r response) {
				require.Empty(t, r.ids())
				require.Zero(t, r.env.Success.ServiceCount)
			},
		},
		{
			name: "Restore brings it back",
			act: func(s *Simulator) error {
				if err := s.Remove("2000001"); err != nil {
					return err
				}
				return s.Restore("2000001")
			},
			check: func(t *testing.T, r response) { require.Equal(t, []string{"2000001"}, r.ids()) },
		},
		{name: "unknown id", act: func(s *Simulator) error { return s.RobotReset("42") }, wantErr: true},
		{name: "invalid capacity", act: func(s *Simulator) error { return s.SetCapacity("2000001", "MEDIUM", "x") }, wantErr: true},
		{name: "SetCapacity needs by", act: func(s *Simulator) error { return s.SetCapacity("2000001", "LOW", "") }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := New(Options{Now: func() time.Time { return now }})
			err := tt.act(sim)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			h := sim.Handler()
			tt.check(t, get(t, h, "capmon", "capmon-demo", byIDBase+"2000001"))
			// Searches agree with lookups.
			r := get(t, h, "capmon", "capmon-demo", search("CAPMON", "LS1 4AP", 1, "40", 1))
			if svc, _ := sim.Get("2000001"); sim.byID[svc.ID].removed {
				require.Empty(t, r.ids())
			} else {
				require.Equal(t, []string{"2000001"}, r.ids())
			}
		})
	}
	t.Run("unknown id wraps ErrUnknownService", func(t *testing.T) {
		require.ErrorIs(t, New(Options{}).Remove("42"), ErrUnknownService)
	})
}

func TestFailureInjectionAndLatency(t *testing.T) {
	sim := New(Options{FailureRate: 1})
	h := sim.Handler()
	path := byIDBase + "2000001"
	r := get(t, h, "capmon", "capmon-demo", path)
	require.Equal(t, http.StatusServiceUnavailable, r.code)
	sim.SetFailureRate(0)
	require.Equal(t, http.StatusOK, get(t, h, "capmon", "capmon-demo", path).code)

	sim.SetLatency(50 * time.Millisecond)
	start := time.Now()
	require.Equal(t, http.StatusOK, get(t, h, "capmon", "capmon-demo", path).code)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	require.Equal(t, 3, sim.Requests())
}

func TestRateLimit(t *testing.T) {
	h := New(Options{RatePerSecond: 1}).Handler()
	path := byIDBase + "2000001"
	tests := []struct {
		user, pass string
		want       int
	}{
		{"capmon", "capmon-demo", http.StatusOK},
		{"capmon", "capmon-demo", http.StatusTooManyRequests},
		{"pathways", "pathways-demo", http.StatusOK}, // per account
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i, tt.user), func(t *testing.T) {
			r := get(t, h, tt.user, tt.pass, path)
			require.Equal(t, tt.want, r.code)
			if tt.want == http.StatusTooManyRequests {
				require.Equal(t, "1", r.header.Get("Retry-After"))
			}
		})
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	run := func(seed uint64) ([]int, [][]string, map[string]string) {
		sim := New(Options{Seed: seed, FailureRate: 0.5})
		h := sim.Handler()
		var codes []int
		for range 30 {
			codes = append(codes, get(t, h, "capmon", "capmon-demo", byIDBase+"2000001").code)
		}
		var changed [][]string
		for range 5 {
			changed = append(changed, sim.randomStep(0.3))
		}
		caps := map[string]string{}
		for _, e := range sim.order {
			caps[e.ID] = e.Capacity + "/" + e.UpdatedBy
		}
		return codes, changed, caps
	}
	codesA, changedA, capsA := run(7)
	codesB, changedB, capsB := run(7)
	require.Equal(t, codesA, codesB)
	require.Equal(t, changedA, changedB)
	require.Equal(t, capsA, capsB)
	require.Contains(t, codesA, http.StatusOK)
	require.Contains(t, codesA, http.StatusServiceUnavailable)
	codesC, changedC, _ := run(8)
	require.False(t, fmt.Sprint(codesA, changedA) == fmt.Sprint(codesC, changedC), "different seeds should differ")
}

func TestRandomChanges(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	sim := New(Options{Seed: 1, Now: func() time.Time { return now }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sim.RandomChanges(ctx, time.Millisecond, 1) })
	require.Eventually(t, func() bool {
		svc, _ := sim.Get("2000001")
		return svc.UpdatedAt.Equal(now)
	}, 2*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	for _, demo := range DemoServices() {
		svc, ok := sim.Get(demo.ID)
		require.True(t, ok)
		require.Contains(t, []string{"HIGH", "LOW", "NONE", ""}, svc.Capacity)
		if svc.Capacity == "" {
			require.Equal(t, directory.RobotUser, svc.UpdatedBy)
		}
	}
}

func TestCatalogueAndRedaction(t *testing.T) {
	services := DemoServices()
	require.GreaterOrEqual(t, len(services), 35)
	seen := map[string]bool{}
	for _, s := range services {
		require.False(t, seen[s.ID], "duplicate id %s", s.ID)
		seen[s.ID] = true
		require.NotEmpty(t, s.Region, s.ID)
		require.Contains(t, []string{TypeEmergencyDepartment, TypeUrgentTreatmentCentre, TypeGPHub}, s.TypeID)
		require.Equal(t, directory.ServiceTypes[s.TypeID], s.TypeName, "type names agree with directory.ServiceTypes")
	}
	acc := DefaultAccounts()["capmon"]
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "acc", acc, "opts", Options{Accounts: DefaultAccounts()})
	for _, out := range []string{fmt.Sprintf("%v %+v %#v", acc, acc, acc), logs.String()} {
		require.NotContains(t, out, acc.Password)
		require.Contains(t, out, CapmonRole)
	}
}
