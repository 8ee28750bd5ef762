package brokersim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node/broker"
)

var t0 = time.Date(2025, time.March, 10, 6, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// codes records the status code of every response.
type codes struct {
	mu  sync.Mutex
	got []int
	h   http.Handler
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (c *codes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	c.h.ServeHTTP(rec, r)
	c.mu.Lock()
	c.got = append(c.got, rec.code)
	c.mu.Unlock()
}

func (c *codes) last() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[len(c.got)-1]
}

// startSim starts sim behind a status recorder and returns a client for it.
func startSim(t *testing.T, sim *Simulator, key string) (*broker.Client, *codes) {
	t.Helper()
	rec := &codes{h: sim.Handler()}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	c, err := broker.NewClient(broker.Options{BaseURL: srv.URL, APIKey: key})
	require.NoError(t, err)
	return c, rec
}

func fixedSim(t *testing.T, specs ...NodeSpec) *Simulator {
	t.Helper()
	sim := New(Options{Now: func() time.Time { return t0 }})
	for _, spec := range specs {
		_, err := sim.AddNode(spec)
		require.NoError(t, err)
	}
	return sim
}

func rawGet(t *testing.T, h http.Handler, method, path, key string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAuth(t *testing.T) {
	sim := fixedSim(t, NodeSpec{ID: "1"})
	h := sim.Handler()
	for _, path := range []string{"/broker/node", "/broker/node/1", "/broker/node/1/stats", "/broker/node/1/versions", "/broker/node/99"} {
		for _, key := range []string{"", "wrong", strings.ToLower(DefaultAdminKey)} {
			rec := rawGet(t, h, http.MethodGet, path, key)
			require.Equal(t, http.StatusUnauthorized, rec.Code, "%s with %q", path, key)
			require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
		}
		require.NotEqual(t, http.StatusUnauthorized, rawGet(t, h, http.MethodGet, path, DefaultAdminKey).Code)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := rawGet(t, h, method, "/broker/status", "")
		require.Equal(t, http.StatusOK, rec.Code)
	}
	require.Contains(t, rawGet(t, h, http.MethodGet, "/broker/status", "").Body.String(), "<broker-status>")

	custom := New(Options{AdminKey: "s3cret"})
	require.Equal(t, http.StatusUnauthorized, rawGet(t, custom.Handler(), http.MethodGet, "/broker/node", DefaultAdminKey).Code)
	require.Equal(t, http.StatusOK, rawGet(t, custom.Handler(), http.MethodGet, "/broker/node", "s3cret").Code)
	require.NotContains(t, fmt.Sprintf("%v %#v", Options{AdminKey: "s3cret"}, Options{AdminKey: "s3cret"}), "s3cret")

	// The real client maps 401 to a permanent ErrUnauthorized.
	c, _ := startSim(t, sim, "wrong")
	_, err := c.Nodes(t.Context())
	require.ErrorIs(t, err, broker.ErrUnauthorized)
	require.True(t, broker.IsPermanent(err))
	c, _ = startSim(t, sim, DefaultAdminKey)
	require.NoError(t, c.Status(t.Context()))
}

func TestNotFound(t *testing.T) {
	sim := fixedSim(t, NodeSpec{ID: "1", Omit: []string{"stats", broker.ResourcePython}})
	h := sim.Handler()
	for _, path := range []string{"/broker/node/2", "/broker/node/2/stats", "/broker/node/1/stats", "/broker/node/1/python", "/broker/node/1/nonsense", "/broker/other"} {
		require.Equal(t, http.StatusNotFound, rawGet(t, h, http.MethodGet, path, DefaultAdminKey).Code, path)
	}
	c, _ := startSim(t, sim, DefaultAdminKey)
	_, err := c.Node(t.Context(), "2")
	require.ErrorIs(t, err, broker.ErrNotFound)
	stats, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Nil(t, stats)
	props, err := c.Resource(t.Context(), "1", broker.ResourcePython)
	require.NoError(t, err)
	require.Empty(t, props)
}

func TestConditionalGet(t *testing.T) {
	sim := fixedSim(t, NodeSpec{ID: "1"})
	h := sim.Handler()
	for _, path := range []string{"/broker/node/1/stats", "/broker/node/1/versions"} {
		first := rawGet(t, h, http.MethodGet, path, DefaultAdminKey)
		require.Equal(t, http.StatusOK, first.Code)
		etag := first.Header().Get("ETag")
		require.Regexp(t, `^"[A-Za-z0-9_-]{43}="$`, etag)
		require.Equal(t, "must-revalidate, max-age=300", first.Header().Get("Cache-Control"))
		require.NotEmpty(t, first.Header().Get("Content-MD5"))
		lastMod := first.Header().Get("Last-Modified")
		require.NotEmpty(t, lastMod)

		rec := rawGet(t, h, http.MethodGet, path, DefaultAdminKey, "If-None-Match", etag)
		require.Equal(t, http.StatusNotModified, rec.Code)
		require.Empty(t, rec.Body.String())
		require.Equal(t, etag, rec.Header().Get("ETag"))
		require.Equal(t, http.StatusNotModified, rawGet(t, h, http.MethodGet, path, DefaultAdminKey, "If-None-Match", `"x", W/`+etag).Code)
		require.Equal(t, http.StatusOK, rawGet(t, h, http.MethodGet, path, DefaultAdminKey, "If-None-Match", `"other"`).Code)
		require.Equal(t, http.StatusNotModified, rawGet(t, h, http.MethodGet, path, DefaultAdminKey, "If-Modified-Since", lastMod).Code)
	}

	// The client revalidates and reuses its parsed copy.
	c, rec := startSim(t, sim, DefaultAdminKey)
	first, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, rec.last())
	second, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Equal(t, http.StatusNotModified, rec.last())
	require.Equal(t, first, second)
	nodes1, err := c.Nodes(t.Context())
	require.NoError(t, err)
	nodes2, err := c.Nodes(t.Context())
	require.NoError(t, err)
	require.Equal(t, http.StatusNotModified, rec.last())
	require.Equal(t, nodes1, nodes2)

	// Two hours later the stats changed: a fresh 200.
	sim.Advance(t0.Add(2 * time.Hour))
	third, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, rec.last())
	require.Greater(t, third.Imported+third.Updated, first.Imported+first.Updated)
}

// scan is what the client sees of one node.
type scan struct {
	listed    bool
	node      broker.Node
	stats     *broker.ImportStats
	resources map[string][]broker.Property
}

func scanNode(t *testing.T, c *broker.Client, id string) scan {
	t.Helper()
	ctx := t.Context()
	nodes, err := c.Nodes(ctx)
	require.NoError(t, err)
	var s scan
	s.listed = slices.ContainsFunc(nodes, func(n broker.Node) bool { return n.ID == id })
	s.node, err = c.Node(ctx, id)
	if !s.listed {
		require.ErrorIs(t, err, broker.ErrNotFound)
	} else {
		require.NoError(t, err)
	}
	s.stats, err = c.Stats(ctx, id)
	require.NoError(t, err)
	s.resources = map[string][]broker.Property{}
	for _, r := range broker.Resources {
		s.resources[r], err = c.Resource(ctx, id, r)
		require.NoError(t, err)
	}
	return s
}

func (s scan) processed() int64 {
	return s.stats.Imported + s.stats.Updated + s.stats.Invalid + s.stats.Failed
}

func (s scan) version() string {
	for _, p := range s.resources[broker.ResourceVersions] {
		if p.Key == "dwh-j2ee" {
			return p.Value
		}
	}
	return ""
}

// dailyRate is the error rate between two scans, in percent.
func dailyRate(prev, cur scan) float64 {
	bad := float64(cur.stats.Invalid + cur.stats.Failed - prev.stats.Invalid - prev.stats.Failed)
	all := float64(cur.processed() - prev.processed())
	if all == 0 {
		return 0
	}
	return bad / all * 100
}

func TestBehavioursThroughClient(t *testing.T) {
	const perHour = 8
	specs := []NodeSpec{
		{ID: "1", Behaviour: Healthy, ImportsPerHour: perHour},
		{ID: "2", Behaviour: Offline, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
		{ID: "3", Behaviour: NoImports, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
		{ID: "4", Behaviour: ErrorStorm, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
		{ID: "5", Behaviour: DWHRestart, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
		{ID: "6", Behaviour: VersionDrift, ImportsPerHour: perHour},
		{ID: "7", Behaviour: VersionDrift, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
		{ID: "8", Behaviour: AppearsAt, At: t0.Add(30 * time.Hour), ImportsPerHour: perHour},
	}
	sim := fixedSim(t, specs...)
	c, _ := startSim(t, sim, DefaultAdminKey)
	at := t0.Add(30 * time.Hour)

	// Scan once a day for five days; the scripted change happens on day 1.
	scans := map[string][]scan{}
	for d := range 5 {
		now := t0.Add(time.Duration(d) * day)
		sim.Advance(now)
		require.Equal(t, now, sim.Now())
		for _, spec := range specs {
			scans[spec.ID] = append(scans[spec.ID], scanNode(t, c, spec.ID))
		}
	}

	healthyDay := func(t *testing.T, prev, cur scan) {
		t.Helper()
		delta := cur.processed() - prev.processed()
		require.InDelta(t, perHour*24, delta, perHour*24*0.35, "daily imports")
		require.Less(t, dailyRate(prev, cur), 1.0)
		require.Equal(t, *prev.stats.Start, *cur.stats.Start)
	}
	contactNow := func(t *testing.T, s scan, now time.Time) {
		t.Helper()
		require.True(t, s.listed)
		require.Equal(t, now, *s.node.LastContact)
		require.True(t, s.node.Websocket)
	}

	t.Run("healthy", func(t *testing.T) {
		ss := scans["1"]
		for d := 1; d < 5; d++ {
			contactNow(t, ss[d], t0.Add(time.Duration(d)*day))
			healthyDay(t, ss[d-1], ss[d])
			require.WithinDuration(t, t0.Add(time.Duration(d)*day), *ss[d].stats.LastWrite, 3*time.Hour)
		}
		require.Equal(t, "dwh-j2ee-"+CurrentDWHVersion, ss[4].version())
		require.Equal(t, "CN=Klinikum 1,O=AKTIN,C=DE", ss[4].node.ClientDN)
		for _, r := range broker.Resources {
			require.NotEmpty(t, ss[4].resources[r], r)
			require.True(t, slices.IsSortedFunc(ss[4].resources[r], func(a, b broker.Property) int { return strings.Compare(a.Key, b.Key) }))
		}
		require.Less(t, ss[0].stats.Start.Sub(t0), -13*day, "installed weeks ago")
	})
	t.Run("offline", func(t *testing.T) {
		ss := scans["2"]
		contactNow(t, ss[1], t0.Add(day))
		healthyDay(t, ss[0], ss[1])
		for d := 2; d < 5; d++ {
			require.True(t, ss[d].listed, "an offline node stays listed")
			require.Equal(t, at, *ss[d].node.LastContact)
			require.False(t, ss[d].node.Websocket)
			require.Equal(t, ss[2].stats, ss[d].stats, "stats freeze")
			require.False(t, ss[d].stats.LastWrite.After(at))
		}
	})
	t.Run("no imports", func(t *testing.T) {
		ss := scans["3"]
		healthyDay(t, ss[0], ss[1])
		for d := 2; d < 5; d++ {
			contactNow(t, ss[d], t0.Add(time.Duration(d)*day))
			require.Equal(t, ss[2].stats, ss[d].stats, "counters and last-write freeze")
			require.False(t, ss[d].stats.LastWrite.After(at))
		}
	})
	t.Run("error storm", func(t *testing.T) {
		ss := scans["4"]
		healthyDay(t, ss[0], ss[1])
		repeats := map[string]int64{}
		for _, e := range ss[1].stats.Errors {
			repeats[e.Content] = e.Repeats
		}
		for d := 3; d < 5; d++ {
			contactNow(t, ss[d], t0.Add(time.Duration(d)*day))
			rate := dailyRate(ss[d-1], ss[d])
			require.Greater(t, rate, 10.0, "day %d", d)
			require.Less(t, rate, 25.0, "day %d", d)
			require.Len(t, ss[d].stats.Errors, MaxLastErrors)
			var fresh, grown int
			for _, e := range ss[d].stats.Errors {
				require.Positive(t, e.Repeats)
				require.NotEmpty(t, e.Content)
				prev, seen := repeats[e.Content]
				switch {
				case !seen:
					fresh++
				case e.Repeats > prev:
					grown++
				}
				repeats[e.Content] = e.Repeats
			}
			require.Greater(t, fresh, 5, "new distinct errors on day %d", d)
			require.Positive(t, grown, "a recurring error's repeats grow on day %d", d)
			require.True(t, slices.IsSortedFunc(ss[d].stats.Errors, func(a, b broker.ImportError) int { return a.Timestamp.Compare(b.Timestamp) }))
			require.False(t, ss[d].stats.LastReject.Before(t0.Add(time.Duration(d)*day-3*time.Hour)))
		}
	})
	t.Run("dwh restart", func(t *testing.T) {
		ss := scans["5"]
		healthyDay(t, ss[0], ss[1])
		require.Greater(t, ss[1].processed(), int64(perHour*24*10), "weeks of counts before the restart")
		require.Equal(t, at, *ss[2].stats.Start)
		require.Less(t, ss[2].processed(), int64(perHour*24), "counters restarted at zero")
		require.False(t, ss[2].stats.LastWrite.Before(at))
		for _, e := range ss[2].stats.Errors {
			require.False(t, e.Timestamp.Before(at), "errors before the restart are gone")
		}
		for d := 3; d < 5; d++ {
			healthyDay(t, ss[d-1], ss[d])
		}
	})
	t.Run("version drift", func(t *testing.T) {
		for d := range 5 {
			require.Equal(t, "dwh-j2ee-"+OutdatedDWHVersion, scans["6"][d].version())
			healthyDayIf := d > 0
			if healthyDayIf {
				healthyDay(t, scans["6"][d-1], scans["6"][d])
			}
		}
		upgraded := scans["7"]
		require.Equal(t, "dwh-j2ee-"+OutdatedDWHVersion, upgraded[1].version())
		require.Equal(t, "dwh-j2ee-"+CurrentDWHVersion, upgraded[2].version())
		require.Contains(t, upgraded[2].resources[broker.ResourceImportScripts], broker.Property{Key: "p21", Value: "1.6"})
	})
	t.Run("appears at", func(t *testing.T) {
		ss := scans["8"]
		for d := range 2 {
			require.False(t, ss[d].listed)
			require.Nil(t, ss[d].stats)
			for _, r := range broker.Resources {
				require.Empty(t, ss[d].resources[r])
			}
		}
		require.True(t, ss[2].listed)
		require.Equal(t, at, *ss[2].stats.Start)
		healthyDay(t, ss[3], ss[4])
	})
}

func TestAppearsMidHour(t *testing.T) {
	at := t0.Add(90 * time.Minute)
	sim := fixedSim(t, NodeSpec{ID: "1"}, NodeSpec{ID: "2", Behaviour: AppearsAt, At: at})
	c, _ := startSim(t, sim, DefaultAdminKey)
	ids := func() []string {
		nodes, err := c.Nodes(t.Context())
		require.NoError(t, err)
		var out []string
		for _, n := range nodes {
			out = append(out, n.ID)
		}
		return out
	}
	require.Equal(t, []string{"1"}, ids())
	sim.Advance(at.Add(-time.Second))
	require.Equal(t, []string{"1"}, ids())
	sim.Advance(at)
	require.Equal(t, []string{"1", "2"}, ids())
	st, err := c.Stats(t.Context(), "2")
	require.NoError(t, err)
	require.Equal(t, at, *st.Start)
	require.Zero(t, st.Imported)
	require.Nil(t, st.LastWrite)
}

func TestDeterministicWhateverTheSteps(t *testing.T) {
	specs := DemoFleet(t0)
	jump := fixedSim(t, specs...)
	steps := fixedSim(t, specs...)
	end := t0.Add(3*day + 17*time.Minute)
	jump.Advance(end)
	for now := t0; now.Before(end); now = now.Add(7 * time.Minute) {
		steps.Advance(now)
	}
	steps.Advance(end)
	for _, id := range jump.NodeIDs() {
		a, err := jump.State(id)
		require.NoError(t, err)
		b, err := steps.State(id)
		require.NoError(t, err)
		require.Equal(t, a, b, id)
		ra := rawGet(t, jump.Handler(), http.MethodGet, "/broker/node/"+id+"/stats", DefaultAdminKey)
		rb := rawGet(t, steps.Handler(), http.MethodGet, "/broker/node/"+id+"/stats", DefaultAdminKey)
		require.Equal(t, ra.Body.String(), rb.Body.String())
	}
	// The clock never goes back.
	jump.Advance(t0)
	require.Equal(t, end, jump.Now())
}

func TestSetBehaviour(t *testing.T) {
	sim := fixedSim(t, NodeSpec{ID: "1"})
	c, _ := startSim(t, sim, DefaultAdminKey)
	off := t0.Add(2 * time.Hour)
	require.NoError(t, sim.SetBehaviour("1", Offline, off))
	require.NoError(t, sim.SetBehaviour("1", Healthy, t0.Add(2*day)))
	sim.Advance(t0.Add(day))
	n, err := c.Node(t.Context(), "1")
	require.NoError(t, err)
	require.Equal(t, off, *n.LastContact)
	sim.Advance(t0.Add(3 * day))
	n, err = c.Node(t.Context(), "1")
	require.NoError(t, err)
	require.Equal(t, t0.Add(3*day), *n.LastContact, "back online")

	// Scripting the past replays the node.
	before, err := sim.State("1")
	require.NoError(t, err)
	require.NoError(t, sim.SetBehaviour("1", DWHRestart, t0.Add(12*time.Hour)))
	after, err := sim.State("1")
	require.NoError(t, err)
	require.Equal(t, t0.Add(12*time.Hour), *after.Stats.Start)
	require.Less(t, after.Stats.Imported, before.Stats.Imported)

	require.ErrorIs(t, sim.SetBehaviour("9", Offline, t0), ErrUnknownNode)
	require.Error(t, sim.SetBehaviour("1", AppearsAt, t0))
}

func TestAddNode(t *testing.T) {
	sim := fixedSim(t)
	tests := []struct {
		name    string
		spec    NodeSpec
		wantID  string
		wantErr error
	}{
		{name: "first free id", spec: NodeSpec{}, wantID: "1"},
		{name: "explicit id", spec: NodeSpec{ID: "10"}, wantID: "10"},
		{name: "next after highest", spec: NodeSpec{}, wantID: "11"},
		{name: "duplicate", spec: NodeSpec{ID: "10"}, wantErr: ErrDuplicateNode},
		{name: "bad id", spec: NodeSpec{ID: "a/b"}},
		{name: "appears without at", spec: NodeSpec{Behaviour: AppearsAt}},
		{name: "negative rate", spec: NodeSpec{ImportsPerHour: -1}},
		{name: "unknown behaviour", spec: NodeSpec{Behaviour: 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sim.AddNode(tt.spec)
			if tt.wantID == "" {
				require.Error(t, err)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantID, got.ID)
			require.Equal(t, DefaultImportsPerHour, got.ImportsPerHour)
			require.Equal(t, "Klinikum "+tt.wantID, got.Name)
		})
	}
	require.Equal(t, []string{"1", "10", "11"}, sim.NodeIDs())
	_, err := sim.State("nope")
	require.ErrorIs(t, err, ErrUnknownNode)
}

func TestFleets(t *testing.T) {
	sim := fixedSim(t)
	demo, err := sim.AddDemoFleet()
	require.NoError(t, err)
	require.Len(t, demo, 12)
	seen := map[Behaviour]bool{}
	for _, s := range demo {
		seen[s.Behaviour] = true
		require.NotEmpty(t, s.Name)
	}
	for _, b := range Behaviours() {
		require.True(t, seen[b], "demo fleet covers %s", b)
	}
	_, err = sim.AddDemoFleet()
	require.ErrorIs(t, err, ErrDuplicateNode)

	a, err := fixedSim(t).AddFleet(500, 7)
	require.NoError(t, err)
	b, err := fixedSim(t).AddFleet(500, 7)
	require.NoError(t, err)
	require.Equal(t, a, b, "same seed, same fleet")
	counts := map[Behaviour]int{}
	for _, s := range a {
		counts[s.Behaviour]++
		require.GreaterOrEqual(t, s.ImportsPerHour, 5)
	}
	for _, beh := range Behaviours() {
		require.Positive(t, counts[beh], beh.String())
	}
	require.Greater(t, counts[Healthy], 300)

	more, err := sim.AddFleet(3, 1)
	require.NoError(t, err)
	require.Equal(t, "13", more[0].ID, "ids continue after the demo fleet")
}

func TestFailureInjectionAndLatency(t *testing.T) {
	sim := New(Options{FailureRate: 1})
	_, err := sim.AddNode(NodeSpec{ID: "1"})
	require.NoError(t, err)
	c, _ := startSim(t, sim, DefaultAdminKey)
	_, err = c.Nodes(t.Context())
	var se *broker.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusServiceUnavailable, se.StatusCode)
	require.False(t, broker.IsPermanent(err))

	sim.SetFailureRate(0)
	sim.SetLatency(30 * time.Millisecond)
	start := time.Now()
	_, err = c.Nodes(t.Context())
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	require.Equal(t, 2, sim.Requests())
}

func TestStartAndRun(t *testing.T) {
	var mu sync.Mutex
	now := t0
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	sim := New(Options{Now: clock})
	_, err := sim.AddDemoFleet()
	require.NoError(t, err)
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sim.Run(ctx, 5*time.Millisecond)
	}()
	mu.Lock()
	now = t0.Add(20 * time.Minute)
	mu.Unlock()
	require.Eventually(t, func() bool { return sim.Now().Equal(t0.Add(20 * time.Minute)) }, 5*time.Second, 5*time.Millisecond)
	cancel()
	<-done

	resp, err := http.Get(url + "/broker/status")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Contains(t, string(body), "<timestamp>2025-03-10T06:20:00Z</timestamp>")
	c, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: DefaultAdminKey})
	require.NoError(t, err)
	nodes, err := c.Nodes(t.Context())
	require.NoError(t, err)
	require.Len(t, nodes, 11, "node 12 appears later")
	stop()
	stop()
}

func TestConcurrentScan(t *testing.T) {
	sim := fixedSim(t)
	_, err := sim.AddFleet(40, 3)
	require.NoError(t, err)
	c, _ := startSim(t, sim, DefaultAdminKey)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i == 0 {
				for h := range 24 {
					sim.Advance(t0.Add(time.Duration(h) * time.Hour))
				}
				return
			}
			for _, id := range sim.NodeIDs() {
				if _, err := c.Stats(t.Context(), id); err != nil {
					t.Error(err)
				}
				if _, err := c.Resource(t.Context(), id, broker.ResourceVersions); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkFleetScan measures one scan of a 500-node fleet through the
// real client over HTTP: the node list plus node, stats and four
// resources per node (3001 requests), 16 at a time, the clock moving 15
// minutes per scan.
func BenchmarkFleetScan(b *testing.B) {
	sim := New(Options{Now: func() time.Time { return t0 }})
	if _, err := sim.AddFleet(500, 1); err != nil {
		b.Fatal(err)
	}
	url, stop, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	c, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: DefaultAdminKey, HTTPClient: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 32},
	}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := t0
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(15 * time.Minute)
		sim.Advance(now)
		nodes, err := c.Nodes(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ids := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for id := range ids {
					if _, err := c.Node(ctx, id); err != nil {
						b.Error(err)
					}
					if _, err := c.Stats(ctx, id); err != nil {
						b.Error(err)
					}
					for _, r := range broker.Resources {
						if _, err := c.Resource(ctx, id, r); err != nil {
							b.Error(err)
						}
					}
				}
			})
		}
		for _, n := range nodes {
			ids <- n.ID
		}
		close(ids)
		wg.Wait()
	}
	b.ReportMetric(float64(sim.Requests())/float64(b.N), "requests/scan")
}

// BenchmarkAddFleet measures building a 500-node fleet (weeks of hourly
// history replayed per node).
func BenchmarkAddFleet(b *testing.B) {
	for b.Loop() {
		sim := New(Options{Now: func() time.Time { return t0 }})
		if _, err := sim.AddFleet(500, 1); err != nil {
			b.Fatal(err)
		}
	}
}
