package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/session"
	"github.com/vigil-health/vigil/internal/stores"
)

// unreachableDeps points at ports where nothing listens: good for every test
// that must be answered before a dependency is touched, and for /readyz's
// failure path.
func unreachableDeps(t *testing.T, logger *slog.Logger) api.Deps {
	t.Helper()
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	tc, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Logger: quietLogger{}})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return api.Deps{Stores: stores.New(db), Temporal: tc, Logger: logger, Namespace: "default", TaskQueue: "test", Rights: liveSessions{}}
}

// liveSessions is the session check of unit tests whose database is
// unreachable: every session is live and keeps its token's rights. (The
// real check runs in the integration tests.)
type liveSessions struct{}

func (liveSessions) Check(context.Context, string, string, string) (session.Rights, error) {
	return session.Rights{Live: true}, nil
}

func (liveSessions) CheckCookie(context.Context, string) (string, string, string, session.Rights, error) {
	return "", "", "", session.Rights{Reason: "no session"}, nil
}
func (liveSessions) Forget(string)                {}
func (liveSessions) ForgetSubject(string, string) {}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func do(t *testing.T, h http.Handler, method, path, contentType, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, path, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) api.ErrorDetail {
	t.Helper()
	require.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
	var body api.ErrorBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
	require.NotEmpty(t, body.Error.Code)
	require.NotEmpty(t, body.Error.Message)
	require.Equal(t, w.Header().Get(api.RequestIDHeader), body.Error.RequestID)
	return body.Error
}

func TestBadInputGetsA4xxNamingTheField(t *testing.T) {
	router := api.NewRouter(unreachableDeps(t, nil))
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
		field       string
	}{
		{"malformed JSON", "POST", "/v1/system/check", "application/json", `{"note":`, 400, api.CodeInvalidJSON, ""},
		{"broken JSON", "POST", "/v1/system/check", "application/json", `{"note" "x"}`, 400, api.CodeInvalidJSON, ""},
		{"not an object", "POST", "/v1/system/check", "application/json", `[1,2]`, 400, api.CodeInvalidJSON, ""},
		{"two objects", "POST", "/v1/system/check", "application/json", `{} {}`, 400, api.CodeInvalidJSON, ""},
		{"unknown field", "POST", "/v1/system/check", "application/json", `{"bogus":1}`, 400, api.CodeUnknownField, "bogus"},
		{"empty field name", "POST", "/v1/system/check", "application/json", `{"":1}`, 400, api.CodeInvalidJSON, ""},
		{"field name with a quote", "POST", "/v1/system/check", "application/json", `{"a\"b":1}`, 400, api.CodeUnknownField, `a"b`},
		{"wrong type", "POST", "/v1/system/check", "application/json", `{"note":5}`, 400, api.CodeInvalidField, "note"},
		{"too long", "POST", "/v1/system/check", "application/json", `{"note":"` + strings.Repeat("x", 501) + `"}`, 400, api.CodeInvalidField, "note"},
		{"wrong media type", "POST", "/v1/system/check", "text/plain", `note`, 415, api.CodeUnsupportedMedia, ""},
		{"too large", "POST", "/v1/system/check", "application/json", `{"note":"` + strings.Repeat("x", 2<<20) + `"}`, 413, api.CodeBodyTooLarge, ""},
		{"bad wait flag", "POST", "/v1/system/check?wait=soon", "", "", 400, api.CodeInvalidField, "wait"},
		{"id not a uuid", "GET", "/v1/system/checks/not-a-uuid", "", "", 400, api.CodeInvalidField, "id"},
		{"unknown route", "GET", "/v1/nothing-here", "", "", 404, api.CodeNotFound, ""},
		{"wrong method", "DELETE", "/v1/system/check", "", "", 405, api.CodeMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, router, tt.method, tt.path, tt.contentType, tt.body)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			e := decodeError(t, w)
			require.Equal(t, tt.code, e.Code)
			require.Equal(t, tt.field, e.Field)
		})
	}
}

func TestRequestID(t *testing.T) {
	router := api.NewRouter(unreachableDeps(t, nil))
	tests := []struct {
		name   string
		sent   string
		echoed bool
	}{
		{"kept when sane", "trace-123_abc", true},
		{"replaced when it has spaces", "two words", false},
		{"replaced when too long", strings.Repeat("a", 129), false},
		{"generated when absent", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.sent != "" {
				headers = []string{api.RequestIDHeader, tt.sent}
			}
			w := do(t, router, "GET", "/healthz", "", "", headers...)
			require.Equal(t, http.StatusOK, w.Code)
			got := w.Header().Get(api.RequestIDHeader)
			if tt.echoed {
				require.Equal(t, tt.sent, got)
			} else {
				require.Regexp(t, regexp.MustCompile(`^[0-9a-f]{32}$`), got)
			}
		})
	}
}

func TestAccessLogAndMetrics(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	router := api.NewRouter(unreachableDeps(t, logger))

	w := do(t, router, "GET", "/healthz?token=secret", "", "", api.RequestIDHeader, "req-1")
	require.Equal(t, http.StatusOK, w.Code)
	var line map[string]any
	require.NoError(t, json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line))
	require.Equal(t, "http request", line["msg"])
	require.Equal(t, "req-1", line["request_id"])
	require.Equal(t, "/healthz", line["route"])
	require.EqualValues(t, 200, line["status"])
	require.NotContains(t, buf.String(), "secret", "query strings stay out of the log")

	do(t, router, "GET", "/no/such/path/123", "", "")
	m := do(t, router, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, m.Code)
	body := m.Body.String()
	require.Contains(t, body, `vigil_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1`)
	require.Contains(t, body, `route="unmatched",status="404"`)
	require.NotContains(t, body, "/no/such/path", "raw paths never become labels")
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_resident_memory_bytes")
}

func TestPanicBecomesJSON500(t *testing.T) {
	var buf bytes.Buffer
	router := api.NewRouter(unreachableDeps(t, slog.New(slog.NewJSONHandler(&buf, nil))))
	router.GET("/boom", func(*gin.Context) { panic("kaboom") })
	w := do(t, router, "GET", "/boom", "", "")
	require.Equal(t, http.StatusInternalServerError, w.Code)
	e := decodeError(t, w)
	require.Equal(t, api.CodeInternal, e.Code)
	require.NotContains(t, e.Message, "kaboom", "internals are logged, not returned")
	require.Contains(t, buf.String(), "kaboom")
	require.Contains(t, buf.String(), "stack")
}

func TestReadyzNamesTheFailingDependency(t *testing.T) {
	router := api.NewRouter(unreachableDeps(t, nil))
	w := do(t, router, "GET", "/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	var body struct {
		Status string                    `json:"status"`
		Checks map[string]map[string]any `json:"checks"`
		Error  api.ErrorDetail           `json:"error"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "unavailable", body.Status)
	require.Equal(t, "unavailable", body.Checks["postgres"]["status"])
	require.Equal(t, "unavailable", body.Checks["temporal"]["status"])
	require.Equal(t, api.CodeNotReady, body.Error.Code)
	require.Contains(t, body.Error.Message, "postgres")
	require.Contains(t, body.Error.Message, "temporal")
}

// TestOpenAPIDocumentMatchesRoutes keeps the document honest: it is valid
// OpenAPI 3, and it describes exactly the routes the router serves.
func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIDocument)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))

	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	var served []string
	for _, r := range api.NewRouter(unreachableDeps(t, nil)).Routes() {
		served = append(served, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)

	w := do(t, api.NewRouter(unreachableDeps(t, nil)), "GET", "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, string(api.OpenAPIDocument), w.Body.String())
}

// TestMetrics_SeparateAddress: with Deps.SeparateMetrics (VIGIL_METRICS_ADDR
// set) the API and operations routers answer /metrics with 404, and the
// metrics router serves the same registry, counting the API's requests.
func TestMetrics_SeparateAddress(t *testing.T) {
	d := unreachableDeps(t, nil)
	d.Metrics = metrics.New()
	d.SeparateMetrics = true
	router, ops, only := api.NewRouter(d), api.NewOperationsRouter(d), api.NewMetricsRouter(d)

	require.Equal(t, http.StatusOK, do(t, router, "GET", "/healthz", "", "").Code)
	require.Equal(t, http.StatusNotFound, do(t, router, "GET", "/metrics", "", "").Code)
	require.Equal(t, http.StatusNotFound, do(t, ops, "GET", "/metrics", "", "").Code)
	require.Equal(t, http.StatusOK, do(t, ops, "GET", "/healthz", "", "").Code, "health stays on the main address")

	m := do(t, only, "GET", "/metrics", "", "")
	require.Equal(t, http.StatusOK, m.Code)
	require.Contains(t, m.Body.String(), `vigil_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 2`)
	require.Equal(t, http.StatusNotFound, do(t, only, "GET", "/healthz", "", "").Code, "the metrics address serves /metrics only")
	require.Equal(t, http.StatusNotFound, do(t, only, "POST", "/v1/auth/login", "application/json", `{}`).Code)

	d.SeparateMetrics = false
	require.Equal(t, http.StatusOK, do(t, api.NewRouter(d), "GET", "/metrics", "", "").Code, "unset keeps /metrics on the API")
}
