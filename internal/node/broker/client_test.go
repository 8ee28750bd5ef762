package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testKey = "admin-key-123"

// fake is a broker answering fixed bodies per path, with ETag support.
type fake struct {
	mu     sync.Mutex
	routes map[string]route
	seen   []*http.Request
}

type route struct {
	code  int
	body  string
	etag  string
	delay time.Duration
}

func newFake(t *testing.T) (*fake, *Client) {
	t.Helper()
	f := &fake{routes: map[string]route{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := NewClient(Options{BaseURL: srv.URL + "/", APIKey: testKey, Timeout: 2 * time.Second})
	require.NoError(t, err)
	return f, c
}

func (f *fake) set(path string, r route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.code == 0 {
		r.code = http.StatusOK
	}
	f.routes[path] = r
}

func (f *fake) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.seen...)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Clone(context.Background()))
	rt, ok := f.routes[r.URL.EscapedPath()]
	f.mu.Unlock()
	if rt.delay > 0 {
		select {
		case <-time.After(rt.delay):
		case <-r.Context().Done():
			return
		}
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rt.etag != "" {
		w.Header().Set("ETag", rt.etag)
		if r.Header.Get("If-None-Match") == rt.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(rt.code)
	_, _ = w.Write([]byte(rt.body))
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return string(b)
}

func ts(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	t = t.UTC()
	return &t
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"ok", Options{BaseURL: "https://broker.example.org/"}, ""},
		{"ok path", Options{BaseURL: "http://127.0.0.1:8080/aktin"}, ""},
		{"empty", Options{}, "absolute http(s) URL"},
		{"relative", Options{BaseURL: "/broker"}, "absolute http(s) URL"},
		{"ftp", Options{BaseURL: "ftp://broker.example.org"}, "absolute http(s) URL"},
		{"query", Options{BaseURL: "https://broker.example.org/?x=1"}, "query or fragment"},
		{"bad", Options{BaseURL: "http://[::1"}, "base URL"},
		{"negative timeout", Options{BaseURL: "https://b.example", Timeout: -time.Second}, "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.opts)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, DefaultTimeout, c.timeout)
			require.False(t, strings.HasSuffix(c.base, "/"))
		})
	}
}

func TestOptionsRedactKey(t *testing.T) {
	o := Options{BaseURL: "https://b.example", APIKey: "very-secret"}
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "opts", o)
	j, err := json.Marshal(o)
	require.NoError(t, err)
	for _, s := range []string{o.String(), fmt.Sprintf("%v %+v %#v", o, o, o), buf.String(), string(j)} {
		require.NotContains(t, s, "very-secret")
		require.Contains(t, s, "REDACTED")
	}
}

func TestStats(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    *ImportStats
	}{
		{
			name:    "errors with and without repeats",
			fixture: "stats-example1.xml",
			want: &ImportStats{
				Start:      ts("2017-09-08T13:48:27.257+02:00"),
				LastWrite:  ts("2017-09-28T15:02:53.873+02:00"),
				LastReject: ts("2017-09-28T19:23:49.137+02:00"),
				Imported:   583, Invalid: 198,
				Errors: []ImportError{
					{Timestamp: *ts("2017-09-15T17:51:18.355+02:00"), Repeats: 1, Content: "error: cvc-id.2: There are multiple occurrences of ID value '_15613'.\n" +
						"error: cvc-attribute.3: The value '_15613' of attribute 'ID' on element 'item' is not valid with respect to its type, 'ID'.\n" +
						"fatal: XML validation not passed"},
					{Timestamp: *ts("2017-09-21T14:40:32.584+02:00"), Repeats: 5, Content: "error: (Referralto): Element hl7:code ist mandatory [min 1x].\nfatal: XML validation not passed"},
					{Timestamp: *ts("2017-09-28T13:50:33.728+02:00"), Repeats: 20, Content: "error: cvc-id.2: There are multiple occurrences of ID value 'diag-1'.\nfatal: XML validation not passed"},
				},
			},
		},
		{
			name:    "no errors, no last-reject",
			fixture: "stats-example2.xml",
			want: &ImportStats{
				Start:     ts("2017-09-08T13:48:27.257+02:00"),
				LastWrite: ts("2017-09-28T15:02:53.873+02:00"),
				Imported:  583,
			},
		},
		{
			name:    "namespaced, partial fields",
			fixture: "stats-partial.xml",
			want: &ImportStats{
				Start:    ts("2020-03-04T12:34:56Z"),
				Imported: 10,
				Errors: []ImportError{
					{Timestamp: *ts("2020-03-04T12:40:00Z"), Repeats: 1, Content: "no repeats, no offset"},
					{Repeats: 3, Content: "no timestamp"},
					{Timestamp: *ts("2020-03-04T11:41:00.5Z"), Repeats: 2, Content: ""},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(t)
			f.set("/broker/node/7/stats", route{body: fixture(t, tt.fixture)})
			got, err := c.Stats(t.Context(), "7")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestStatsErrorContentCapped(t *testing.T) {
	f, c := newFake(t)
	long := strings.Repeat("ä", MaxErrorContent+50)
	f.set("/broker/node/1/stats", route{body: `<import-statistics><last-errors><error timestamp="2020-01-01T00:00:00Z">` + long + `</error></last-errors></import-statistics>`})
	got, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Len(t, got.Errors, 1)
	require.Equal(t, strings.Repeat("ä", MaxErrorContent), got.Errors[0].Content)
}

func TestNodes(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/node", route{body: fixture(t, "node-list.xml")})
	got, err := c.Nodes(t.Context())
	require.NoError(t, err)
	require.Equal(t, []Node{
		{ID: "1"},
		{ID: "2", ClientDN: "CN=Klinikum Zwei,O=AKTIN,C=DE", LastContact: ts("2020-03-04T11:34:56.789Z")},
		{ID: "10", ClientDN: "CN=Klinikum Zehn,O=AKTIN,C=DE", LastContact: ts("2020-03-04T12:34:56.789Z"), Websocket: true},
	}, got)

	f.set("/broker/node", route{body: `<node-list xmlns="http://aktin.org/ns/exchange"/>`})
	got, err = c.Nodes(t.Context())
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestNode(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/node/3", route{body: `<?xml version="1.0"?><node xmlns="http://aktin.org/ns/exchange"><id>3</id><clientDN>CN=Drei</clientDN><last-contact>2024-05-01T08:00:00Z</last-contact></node>`})
	f.set("/broker/node/4", route{body: `<node><id>4</id></node>`})
	n, err := c.Node(t.Context(), "3")
	require.NoError(t, err)
	require.Equal(t, Node{ID: "3", ClientDN: "CN=Drei", LastContact: ts("2024-05-01T08:00:00Z")}, n)

	n, err = c.Node(t.Context(), "4")
	require.NoError(t, err)
	require.Equal(t, Node{ID: "4"}, n)

	_, err = c.Node(t.Context(), "5")
	require.ErrorIs(t, err, ErrNotFound)
	require.True(t, IsPermanent(err))
}

func TestResource(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/node/1/versions", route{body: fixture(t, "versions.xml")})
	f.set("/broker/node/1/python", route{body: `<properties/>`})
	got, err := c.Resource(t.Context(), "1", ResourceVersions)
	require.NoError(t, err)
	require.Equal(t, []Property{
		{"apache2", "2.4.41-4ubuntu3.8"},
		{"dwh-j2ee", "dwh-j2ee-1.5.1rc1"},
		{"java", "Ubuntu/11.0.13"},
		{"kernel", "-"},
		{"postgres", "12.9-0ubuntu0.20.04.1"},
	}, got)

	got, err = c.Resource(t.Context(), "1", ResourcePython)
	require.NoError(t, err)
	require.Empty(t, got)

	got, err = c.Resource(t.Context(), "1", ResourceRScript) // 404
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)

	_, err = c.Resource(t.Context(), "1", "a/b")
	require.Error(t, err)
}

func TestStatsNotFound(t *testing.T) {
	_, c := newFake(t)
	got, err := c.Stats(t.Context(), "9")
	require.NoError(t, err)
	require.Nil(t, got)
}

func TestHeaders(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/status", route{})
	f.set("/broker/node", route{body: `<node-list/>`})
	require.NoError(t, c.Status(t.Context()))
	_, err := c.Nodes(t.Context())
	require.NoError(t, err)
	reqs := f.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, http.MethodHead, reqs[0].Method)
	require.Empty(t, reqs[0].Header.Get("Authorization"), "status needs no key")
	require.Equal(t, UserAgent, reqs[0].Header.Get("User-Agent"))
	require.Equal(t, http.MethodGet, reqs[1].Method)
	require.Equal(t, "Bearer "+testKey, reqs[1].Header.Get("Authorization"))
	require.Equal(t, "application/xml", reqs[1].Header.Get("Accept"))
	require.Equal(t, UserAgent, reqs[1].Header.Get("User-Agent"))
	require.Empty(t, reqs[1].Header.Get("If-None-Match"))
}

func TestConditionalGet(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/node/1/stats", route{body: fixture(t, "stats-example1.xml"), etag: `"v1"`})
	first, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	first.Errors[0].Content = "mutated by the caller"
	*first.Start = time.Time{}

	second, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	reqs := f.requests()
	require.Len(t, reqs, 2)
	require.Empty(t, reqs[0].Header.Get("If-None-Match"))
	require.Equal(t, `"v1"`, reqs[1].Header.Get("If-None-Match"))
	require.Equal(t, int64(583), second.Imported)
	require.Equal(t, ts("2017-09-08T13:48:27.257+02:00"), second.Start, "the cache is not shared with callers")
	require.Contains(t, second.Errors[0].Content, "_15613")

	// A changed resource is fetched and parsed again.
	f.set("/broker/node/1/stats", route{body: fixture(t, "stats-example2.xml"), etag: `"v2"`})
	third, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Empty(t, third.Errors)
	require.Equal(t, `"v1"`, f.requests()[2].Header.Get("If-None-Match"))

	// A 404 drops the cached entry.
	f.mu.Lock()
	delete(f.routes, "/broker/node/1/stats")
	f.mu.Unlock()
	gone, err := c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Nil(t, gone)
	f.set("/broker/node/1/stats", route{body: fixture(t, "stats-example2.xml"), etag: `"v2"`})
	_, err = c.Stats(t.Context(), "1")
	require.NoError(t, err)
	require.Empty(t, f.requests()[4].Header.Get("If-None-Match"))

	// Node lists and resources are revalidated the same way.
	f.set("/broker/node", route{body: fixture(t, "node-list.xml"), etag: `"l1"`})
	f.set("/broker/node/1/versions", route{body: fixture(t, "versions.xml"), etag: `"r1"`})
	for range 2 {
		nodes, err := c.Nodes(t.Context())
		require.NoError(t, err)
		require.Len(t, nodes, 3)
		props, err := c.Resource(t.Context(), "1", ResourceVersions)
		require.NoError(t, err)
		require.Len(t, props, 5)
	}
	reqs = f.requests()
	require.Equal(t, `"l1"`, reqs[len(reqs)-2].Header.Get("If-None-Match"))
	require.Equal(t, `"r1"`, reqs[len(reqs)-1].Header.Get("If-None-Match"))
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name      string
		route     route
		is        error
		status    int
		permanent bool
	}{
		{"401", route{code: http.StatusUnauthorized}, ErrUnauthorized, 0, true},
		{"403", route{code: http.StatusForbidden}, ErrUnauthorized, 0, true},
		{"500", route{code: http.StatusInternalServerError}, nil, 500, false},
		{"503", route{code: http.StatusServiceUnavailable}, nil, 503, false},
		{"429", route{code: http.StatusTooManyRequests}, nil, 429, false},
		{"400", route{code: http.StatusBadRequest}, nil, 400, true},
		{"html", route{body: "<html><body>Login</body></html>"}, ErrMalformed, 0, true},
		{"not xml", route{body: "hello"}, ErrMalformed, 0, true},
		{"truncated", route{body: "<node-list><node><id>1</id>"}, ErrMalformed, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(t)
			f.set("/broker/node", tt.route)
			_, err := c.Nodes(t.Context())
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			if tt.status != 0 {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, tt.status, se.StatusCode)
			}
			require.Equal(t, tt.permanent, IsPermanent(err))
			require.NotContains(t, err.Error(), testKey)
		})
	}

	t.Run("bad count", func(t *testing.T) {
		f, c := newFake(t)
		f.set("/broker/node/1/stats", route{body: `<import-statistics><imported>many</imported></import-statistics>`})
		_, err := c.Stats(t.Context(), "1")
		require.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("wrong root", func(t *testing.T) {
		f, c := newFake(t)
		f.set("/broker/node/1/stats", route{body: `<properties/>`})
		_, err := c.Stats(t.Context(), "1")
		require.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("status 503", func(t *testing.T) {
		f, c := newFake(t)
		f.set("/broker/status", route{code: http.StatusServiceUnavailable})
		err := c.Status(t.Context())
		var se *StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, http.MethodHead, se.Method)
	})
}

func TestTimeout(t *testing.T) {
	f := &fake{routes: map[string]route{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := NewClient(Options{BaseURL: srv.URL, APIKey: testKey, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	f.set("/broker/node", route{body: `<node-list/>`, delay: 2 * time.Second})
	_, err = c.Nodes(t.Context())
	require.Error(t, err)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
	require.False(t, IsPermanent(err))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Nodes(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("boom"), false},
		{fmt.Errorf("x: %w", ErrUnauthorized), true},
		{fmt.Errorf("x: %w", ErrMalformed), true},
		{fmt.Errorf("x: %w", ErrNotFound), true},
		{&StatusError{StatusCode: 502}, false},
		{fmt.Errorf("x: %w", &StatusError{StatusCode: 410}), true},
		{&StatusError{StatusCode: 408}, false},
		{context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsPermanent(tt.err), "%v", tt.err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want *time.Time
	}{
		{"", nil},
		{"  ", nil},
		{"yesterday", nil},
		{"2020-03-04T12:34:56Z", ts("2020-03-04T12:34:56Z")},
		{"2020-03-04T12:34:56.789+01:00", ts("2020-03-04T11:34:56.789Z")},
		{"2020-03-04T12:34:56.123456789Z", ts("2020-03-04T12:34:56.123456789Z")},
		{"2020-03-04T12:34:56+0200", ts("2020-03-04T10:34:56Z")},
		{"2020-03-04T12:34:56", ts("2020-03-04T12:34:56Z")},
		{"2020-03-04T12:34:56.5", ts("2020-03-04T12:34:56.5Z")},
		{"2020-03-04 12:34:56", ts("2020-03-04T12:34:56Z")},
		{" 2020-03-04T12:34:56Z\n", ts("2020-03-04T12:34:56Z")},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ParseTime(tt.in), "%q", tt.in)
	}
}

func TestCompareIDs(t *testing.T) {
	ids := []string{"b", "10", "2", "a", "1"}
	slices.SortFunc(ids, CompareIDs)
	require.Equal(t, []string{"1", "2", "10", "a", "b"}, ids)
}

func TestLatin1(t *testing.T) {
	f, c := newFake(t)
	f.set("/broker/node/1/versions", route{body: "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><properties><entry key=\"os\">M\xfcnchen</entry></properties>"})
	got, err := c.Resource(t.Context(), "1", ResourceVersions)
	require.NoError(t, err)
	require.Equal(t, []Property{{"os", "München"}}, got)
}
