package directory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
)

const secret = "s3cret-pa55"

// testConfig is a config with three roles and a fast rate limit.
func testConfig(baseURL string) directory.DoSConfig {
	return directory.DoSConfig{
		BaseURL: baseURL,
		Accounts: map[string]directory.Account{
			"CAPMON":            {Username: "capmon", Password: secret},
			"PATHWAYS_REFERRAL": {Username: "pathways", Password: secret},
			"DIGITAL_REFERRAL":  {Username: "digital", Password: secret},
		},
		DefaultRole:   "PATHWAYS_REFERRAL",
		FallbackRole:  "DIGITAL_REFERRAL",
		RatePerSecond: 1000,
	}
}

func newClient(t *testing.T, cfg directory.DoSConfig) *directory.DoSClient {
	t.Helper()
	c, err := directory.NewDoSClient(cfg)
	require.NoError(t, err)
	return c
}

// serve starts an httptest server with h and returns its URL.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func okBody(services ...string) string {
	return fmt.Sprintf(`{"success":{"code":200,"serviceCount":%d,"services":[%s]}}`,
		len(services), strings.Join(services, ","))
}

func TestNewDoSClientValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*directory.DoSConfig)
		ok     bool
	}{
		{"valid", func(*directory.DoSConfig) {}, true},
		{"zero rate defaults", func(c *directory.DoSConfig) { c.RatePerSecond = 0 }, true},
		{"no fallback", func(c *directory.DoSConfig) { c.FallbackRole = "" }, true},
		{"relative URL", func(c *directory.DoSConfig) { c.BaseURL = "/dos" }, false},
		{"bad scheme", func(c *directory.DoSConfig) { c.BaseURL = "ftp://dos.example" }, false},
		{"no default role", func(c *directory.DoSConfig) { c.DefaultRole = "" }, false},
		{"default role without account", func(c *directory.DoSConfig) { c.DefaultRole = "X" }, false},
		{"fallback role without account", func(c *directory.DoSConfig) { c.FallbackRole = "X" }, false},
		{"account without username", func(c *directory.DoSConfig) { c.Accounts["CAPMON"] = directory.Account{} }, false},
		{"negative rate", func(c *directory.DoSConfig) { c.RatePerSecond = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("https://dos.example/")
			tt.mutate(&cfg)
			_, err := directory.NewDoSClient(cfg)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestSearchRequest(t *testing.T) {
	tests := []struct {
		name     string
		q        directory.SearchQuery
		wantURI  string
		wantUser string
	}{
		{
			name:     "default role, escaped postcode, empty gp",
			q:        directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 10, ServiceTypes: []string{"40", "100"}, ResultsLimit: 5},
			wantURI:  "/app/controllers/api/v1.0/services/byServiceType/PATHWAYS_REFERRAL/LS1%204AP/10/0/0/0/0/40,100/5",
			wantUser: "pathways",
		},
		{
			name:     "explicit role and gp",
			q:        directory.SearchQuery{Postcode: "SW1A 2AA", DistanceMiles: 3, GP: "Y01234", ServiceTypes: []string{"28"}, ResultsLimit: 1, Role: "CAPMON"},
			wantURI:  "/app/controllers/api/v1.0/services/byServiceType/CAPMON/SW1A%202AA/3/Y01234/0/0/0/28/1",
			wantUser: "capmon",
		},
		{
			name:     "odd characters escaped per segment",
			q:        directory.SearchQuery{Postcode: "A/B?", DistanceMiles: 1, ServiceTypes: []string{"4 0", "1/0"}, ResultsLimit: 2, Role: "CAPMON"},
			wantURI:  "/app/controllers/api/v1.0/services/byServiceType/CAPMON/A%2FB%3F/1/0/0/0/0/4%200,1%2F0/2",
			wantUser: "capmon",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotURI, gotUser, gotPass string
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				gotURI = r.RequestURI
				gotUser, gotPass, _ = r.BasicAuth()
				fmt.Fprint(w, okBody(`{"id":1,"name":"A"}`, `{"id":"2","name":"B"}`))
			})
			got, err := newClient(t, testConfig(url+"/")).Search(context.Background(), tt.q)
			require.NoError(t, err)
			require.Equal(t, tt.wantURI, gotURI)
			require.Equal(t, tt.wantUser, gotUser)
			require.Equal(t, secret, gotPass)
			require.Len(t, got, 2)
			require.Equal(t, "1", got[0].ID)
			require.Equal(t, "2", got[1].ID)
		})
	}
}

func TestSearchInvalidQuery(t *testing.T) {
	valid := directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 5, ServiceTypes: []string{"40"}, ResultsLimit: 1}
	tests := []struct {
		name   string
		mutate func(*directory.SearchQuery)
	}{
		{"no postcode", func(q *directory.SearchQuery) { q.Postcode = " " }},
		{"no types", func(q *directory.SearchQuery) { q.ServiceTypes = nil }},
		{"negative distance", func(q *directory.SearchQuery) { q.DistanceMiles = -1 }},
		{"zero limit", func(q *directory.SearchQuery) { q.ResultsLimit = 0 }},
		{"unknown role", func(q *directory.SearchQuery) { q.Role = "NOPE" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			url := serve(t, func(w http.ResponseWriter, _ *http.Request) { calls++ })
			q := valid
			tt.mutate(&q)
			_, err := newClient(t, testConfig(url)).Search(context.Background(), q)
			require.Error(t, err)
			require.Zero(t, calls)
		})
	}
}

func TestServiceFallbackAndNotFound(t *testing.T) {
	tests := []struct {
		name      string
		visibleTo map[string]bool // username → sees the service
		status404 bool
		noFallbk  bool
		wantUsers []string
		wantErr   error
	}{
		{name: "default account sees it", visibleTo: map[string]bool{"pathways": true}, wantUsers: []string{"pathways"}},
		{name: "fallback account sees it", visibleTo: map[string]bool{"digital": true}, wantUsers: []string{"pathways", "digital"}},
		{name: "nobody sees it", wantUsers: []string{"pathways", "digital"}, wantErr: directory.ErrNotFound},
		{name: "404 answers", status404: true, wantUsers: []string{"pathways", "digital"}, wantErr: directory.ErrNotFound},
		{name: "no fallback configured", visibleTo: map[string]bool{"digital": true}, noFallbk: true, wantUsers: []string{"pathways"}, wantErr: directory.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var users []string
			url := serve(t, func(w http.ResponseWriter, r *http.Request) {
				require.Equal(t, "/app/controllers/api/v1.0/services/byServiceId/123", r.URL.Path)
				user, _, _ := r.BasicAuth()
				users = append(users, user)
				switch {
				case tt.status404:
					http.Error(w, `{"error":"nope"}`, http.StatusNotFound)
				case tt.visibleTo[user]:
					fmt.Fprint(w, okBody(`{"id":123,"name":"Hub"}`))
				default:
					fmt.Fprint(w, `{"success":{"code":200,"serviceCount":0,"services":[]}}`)
				}
			})
			cfg := testConfig(url)
			if tt.noFallbk {
				cfg.FallbackRole = ""
			}
			got, err := newClient(t, cfg).Service(context.Background(), "123")
			require.Equal(t, tt.wantUsers, users)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "123", got.ID)
			require.Equal(t, "Hub", got.Name)
		})
	}
}

func TestErrorClassification(t *testing.T) {
	big := `{"success":{"services":[{"name":"` + strings.Repeat("x", directory.MaxDoSResponseBytes) + `"}]}}`
	tests := []struct {
		name        string
		status      int
		body        string
		want        error
		wantInError string
	}{
		{"401", http.StatusUnauthorized, `{"error":"denied"}`, directory.ErrUnauthorized, "401"},
		{"429", http.StatusTooManyRequests, "", directory.ErrUnavailable, "429"},
		{"500", http.StatusInternalServerError, "", directory.ErrUnavailable, "500"},
		{"503", http.StatusServiceUnavailable, "", directory.ErrUnavailable, "503"},
		{"400 plain", http.StatusBadRequest, "bad", nil, "400"},
		{"403 plain", http.StatusForbidden, "forbidden", nil, "403"},
		{"malformed JSON", http.StatusOK, `{"success":`, directory.ErrUnavailable, "malformed"},
		{"body too large", http.StatusOK, big, directory.ErrUnavailable, "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			c := newClient(t, testConfig(url))
			_, err := c.Service(context.Background(), "1")
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantInError)
			require.NotContains(t, err.Error(), secret)
			all := []error{directory.ErrUnauthorized, directory.ErrUnavailable, directory.ErrNotFound}
			for _, sentinel := range all {
				require.Equal(t, errors.Is(sentinel, tt.want), errors.Is(err, sentinel), "errors.Is(%v)", sentinel)
			}
		})
	}
}

func TestTransportErrorsAreUnavailable(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name string
		url  string
		http *http.Client
	}{
		{"client timeout", slow.URL, &http.Client{Timeout: 50 * time.Millisecond}},
		{"connection refused", closedURL, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(tt.url)
			cfg.HTTP = tt.http
			start := time.Now()
			_, err := newClient(t, cfg).Search(context.Background(), directory.SearchQuery{
				Postcode: "LS1 4AP", DistanceMiles: 1, ServiceTypes: []string{"40"}, ResultsLimit: 1,
			})
			require.ErrorIs(t, err, directory.ErrUnavailable)
			require.NotErrorIs(t, err, directory.ErrUnauthorized)
			require.Less(t, time.Since(start), time.Second)
		})
	}
}

func TestJSONTolerance(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	tests := []struct {
		name    string
		service string
		want    directory.Service
	}{
		{
			name: "full service, BST date without zero padding",
			service: `{"id":2000001,"name":"LGI ED","type":{"id":40,"name":"Emergency Department"},"postcode":"LS1 3EX",
				"easting":429400,"northing":434400,"region":{"name":"Yorkshire"},
				"capacity":{"status":{"human":"LOW","rag":"AMBER"},"updated":{"by":"j.smith","date":"12/8/2017","time":"00:20"}}}`,
			want: directory.Service{ID: "2000001", Name: "LGI ED", Type: "Emergency Department", Postcode: "LS1 3EX",
				Region: "Yorkshire", Easting: 429400, Northing: 434400, Capacity: "LOW", RAG: "AMBER", UpdatedBy: "j.smith",
				UpdatedAt: time.Date(2017, 8, 11, 23, 20, 0, 0, time.UTC)},
		},
		{
			name:    "January date is UTC wall time",
			service: `{"id":"7","capacity":{"status":{"human":"NONE","rag":"RED"},"updated":{"by":"x","date":"12/01/2017","time":"00:20"}}}`,
			want:    directory.Service{ID: "7", Capacity: "NONE", RAG: "RED", UpdatedBy: "x", UpdatedAt: time.Date(2017, 1, 12, 0, 20, 0, 0, time.UTC)},
		},
		{
			name:    "missing capacity, type and region",
			service: `{"id":8,"name":"Bare"}`,
			want:    directory.Service{ID: "8", Name: "Bare"},
		},
		{
			name:    "null and string coordinates",
			service: `{"id":9,"easting":null,"northing":"433600","type":null,"region":null,"capacity":null}`,
			want:    directory.Service{ID: "9", Northing: 433600},
		},
		{
			name:    "garbled coordinates and float",
			service: `{"id":10,"easting":"n/a","northing":433600.6}`,
			want:    directory.Service{ID: "10", Northing: 433601},
		},
		{
			name:    "robot reset with garbled date",
			service: `{"id":11,"capacity":{"status":{"human":"","rag":""},"updated":{"by":"ROBOT","date":"yesterday","time":"12:00"}}}`,
			want:    directory.Service{ID: "11", UpdatedBy: directory.RobotUser},
		},
		{
			name:    "missing time",
			service: `{"id":12,"capacity":{"status":{"human":"HIGH","rag":"GREEN"},"updated":{"by":"u","date":"01/02/2020"}}}`,
			want:    directory.Service{ID: "12", Capacity: "HIGH", RAG: "GREEN", UpdatedBy: "u"},
		},
		{
			name:    "numbers where text is expected",
			service: `{"id":13,"name":42,"postcode":{"odd":true},"capacity":{"status":{"human":"high"}}}`,
			want:    directory.Service{ID: "13", Name: "42", Capacity: "HIGH"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, okBody(tt.service)) })
			got, err := newClient(t, testConfig(url)).Service(context.Background(), tt.want.ID)
			require.NoError(t, err)
			require.Equal(t, tt.want, *got)
		})
	}

	t.Run("ParseDoSTime", func(t *testing.T) {
		times := []struct {
			date, clock string
			want        time.Time
		}{
			{"12/08/2017", "00:20", time.Date(2017, 8, 11, 23, 20, 0, 0, time.UTC)},
			{"1/1/2020", "9:05", time.Date(2020, 1, 1, 9, 5, 0, 0, time.UTC)},
			{"31/03/2024", "12:00:30", time.Date(2024, 3, 31, 11, 0, 30, 0, time.UTC)},
			{"32/01/2020", "10:00", time.Time{}},
			{"", "10:00", time.Time{}},
			{"01/01/2020", "25:00", time.Time{}},
		}
		for _, tc := range times {
			require.Equal(t, tc.want, directory.ParseDoSTime(tc.date, tc.clock, london), "%s %s", tc.date, tc.clock)
		}
	})
}

func TestRateLimitSharedAcrossCalls(t *testing.T) {
	url := serve(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, okBody(`{"id":1}`)) })
	cfg := testConfig(url)
	cfg.RatePerSecond = 2
	c := newClient(t, cfg)
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, err := c.Service(context.Background(), "1")
			require.NoError(t, err)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, 950*time.Millisecond)
	require.Less(t, elapsed, 3*time.Second)

	t.Run("wait honours context", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, _ = c.Service(context.Background(), "1") // take the next slot
		_, err := c.Service(ctx, "1")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, directory.ErrUnavailable)
	})
}

func TestAccountRedaction(t *testing.T) {
	cfg := testConfig("https://dos.example")
	acc := cfg.Accounts["CAPMON"]
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("account", "acc", acc, "cfg", cfg)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("account", "acc", acc, "cfg", cfg)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", acc),
		"%+v":  fmt.Sprintf("%+v", acc),
		"%#v":  fmt.Sprintf("%#v", acc),
		"%s":   fmt.Sprintf("%s", acc),
		"cfg":  fmt.Sprintf("%+v", cfg),
		"slog": logs.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			require.NotContains(t, out, secret)
			require.Contains(t, out, "capmon")
		})
	}
}

// TestAgainstSimulator exercises the client against directorysim.
func TestAgainstSimulator(t *testing.T) {
	sim := directorysim.New(directorysim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cfg := directory.DoSConfig{
		BaseURL: srv.URL,
		Accounts: map[string]directory.Account{
			directorysim.CapmonRole:   {Username: "capmon", Password: "capmon-demo"},
			directorysim.PathwaysRole: {Username: "pathways", Password: "pathways-demo"},
			directorysim.DigitalRole:  {Username: "digital", Password: "digital-demo"},
			"BROKEN":                  {Username: "capmon", Password: "wrong"},
		},
		DefaultRole:   directorysim.PathwaysRole,
		FallbackRole:  directorysim.DigitalRole,
		RatePerSecond: 1000,
	}
	c := newClient(t, cfg)
	ctx := context.Background()

	t.Run("search", func(t *testing.T) {
		got, err := c.Search(ctx, directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 5,
			ServiceTypes: []string{directorysim.TypeEmergencyDepartment}, ResultsLimit: 10, Role: directorysim.CapmonRole})
		require.NoError(t, err)
		ids := make([]string, len(got))
		for i, s := range got {
			ids[i] = s.ID
			require.Equal(t, directorysim.TypeNameEmergencyDepartment, s.Type)
		}
		require.Equal(t, []string{"2000001", "2000002"}, ids)
	})
	t.Run("lookup falls back to the second account", func(t *testing.T) {
		before := sim.Requests()
		got, err := c.Service(ctx, "2000010")
		require.NoError(t, err)
		require.Equal(t, "Armley GP Access Hub", got.Name)
		require.Equal(t, 2, sim.Requests()-before)
	})
	t.Run("not found", func(t *testing.T) {
		_, err := c.Service(ctx, "999")
		require.ErrorIs(t, err, directory.ErrNotFound)
	})
	t.Run("unauthorized", func(t *testing.T) {
		_, err := c.Search(ctx, directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 5,
			ServiceTypes: []string{"40"}, ResultsLimit: 1, Role: "BROKEN"})
		require.ErrorIs(t, err, directory.ErrUnauthorized)
	})
	t.Run("unavailable", func(t *testing.T) {
		sim.SetFailureRate(1)
		defer sim.SetFailureRate(0)
		_, err := c.Service(ctx, "2000001")
		require.ErrorIs(t, err, directory.ErrUnavailable)
	})
}
