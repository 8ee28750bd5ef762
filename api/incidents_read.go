package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/incidentquery"
)

// incidentReadRoutes registers the incident read endpoints: the filtered
// list, one incident with its audit timeline, and the response-time
// metrics. Any authenticated staff member may read them.
func (s *Server) incidentReadRoutes(v1 *gin.RouterGroup) {
	g := v1.Group("/incidents", s.requireStaff())
	g.GET("", s.readIncidentList)
	g.GET("/metrics", s.readIncidentMetrics)
	g.GET("/:id", s.readIncident)
}

// IncidentListItem is one incident of GET /v1/incidents.
type IncidentListItem struct {
	incidentquery.Incident
	// WebUIURL links to the incident's workflow in the Temporal Web UI.
	WebUIURL string `json:"web_ui_url,omitempty"`
}

// IncidentListPage answers GET /v1/incidents.
type IncidentListPage struct {
	Items []IncidentListItem `json:"items"`
	// NextCursor fetches the next page; nil on the last one.
	NextCursor *string `json:"next_cursor"`
}

// IncidentDetailView answers GET /v1/incidents/{id}.
type IncidentDetailView struct {
	incidentquery.IncidentDetail
	// WebUIURL links to the incident's workflow in the Temporal Web UI.
	WebUIURL string `json:"web_ui_url,omitempty"`
}

// IncidentMetricsReport answers GET /v1/incidents/metrics.
type IncidentMetricsReport = incidentquery.Metrics

// defaultIncidentMetricsWindow is the metrics window when the request sets
// no from.
const defaultIncidentMetricsWindow = 7 * 24 * time.Hour

var (
	incidentReadStaffIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	incidentReadAlertTypePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)
)

// readIncidentStore is the incidents query model.
func (s *Server) readIncidentStore() *incidentquery.Store {
	return &incidentquery.Store{DB: s.db}
}

// readIncidentList lists incidents, newest first, with filters and keyset
// pagination.
func (s *Server) readIncidentList(c *gin.Context) {
	f, fe := parseIncidentFilter(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	page, err := s.readIncidentStore().List(c.Request.Context(), f)
	if err != nil {
		s.abortInternal(c, "list incidents", err)
		return
	}
	out := IncidentListPage{Items: make([]IncidentListItem, 0, len(page.Items))}
	for _, in := range page.Items {
		out.Items = append(out.Items, IncidentListItem{Incident: in, WebUIURL: s.workflowURL(in.WorkflowID)})
	}
	if page.Next != nil {
		next := page.Next.Encode()
		out.NextCursor = &next
	}
	c.JSON(http.StatusOK, out)
}

// parseIncidentFilter reads the list's query parameters.
func parseIncidentFilter(c *gin.Context) (incidentquery.Filter, *fieldError) {
	var (
		f   incidentquery.Filter
		fe  *fieldError
		err error
	)
	if f.Statuses, fe = parseIncidentEnumList(c, "status", incidentquery.Statuses); fe != nil {
		return f, fe
	}
	if f.Severities, fe = parseIncidentEnumList(c, "severity", incidentquery.Severities); fe != nil {
		return f, fe
	}
	if v, ok := c.GetQuery("assignee"); ok {
		switch {
		case v == "me":
			f.AssignedTo = principal(c).Subject
		case incidentReadStaffIDPattern.MatchString(v):
			f.AssignedTo = v
		default:
			return f, invalid("assignee", "must be a staff id (1 to 32 letters, digits, _ or -) or me")
		}
	}
	if v, ok := c.GetQuery("alert_type"); ok {
		if !incidentReadAlertTypePattern.MatchString(v) {
			return f, invalid("alert_type", "must be an alert type such as FALL_DETECTED")
		}
		f.AlertType = v
	}
	if f.From, fe = parseIncidentTime(c, "from"); fe != nil {
		return f, fe
	}
	if f.To, fe = parseIncidentTime(c, "to"); fe != nil {
		return f, fe
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		return f, invalid("from", "must not be after to")
	}
	f.Limit = incidentquery.DefaultLimit
	if v, ok := c.GetQuery("limit"); ok {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > incidentquery.MaxLimit {
			return f, invalid("limit", "must be an integer from 1 to "+strconv.Itoa(incidentquery.MaxLimit))
		}
	}
	if v, ok := c.GetQuery("cursor"); ok {
		cur, err := incidentquery.DecodeCursor(v)
		if err != nil {
			return f, invalid("cursor", "must be a next_cursor returned by this endpoint")
		}
		f.After = &cur
	}
	return f, nil
}

// parseIncidentEnumList reads a comma-separated (or repeated) query
// parameter whose values must all be in allowed.
func parseIncidentEnumList(c *gin.Context, name string, allowed []string) ([]string, *fieldError) {
	raw, ok := c.GetQueryArray(name)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, r := range raw {
		for v := range strings.SplitSeq(r, ",") {
			v = strings.TrimSpace(v)
			if !slices.Contains(allowed, v) {
				return nil, invalid(name, "must be a comma-separated list of "+strings.Join(allowed, ", "))
			}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// parseIncidentTime reads an optional RFC 3339 time; zero when absent.
func parseIncidentTime(c *gin.Context, name string) (time.Time, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		msg := "must be an RFC 3339 time such as 2026-07-15T10:00:00Z"
		if strings.Contains(v, " ") {
			msg += " (encode + in an offset as %2B)"
		}
		return time.Time{}, invalid(name, msg)
	}
	return t.UTC(), nil
}

// readIncident returns one incident with its full audit timeline.
func (s *Server) readIncident(c *gin.Context) {
	id := c.Param("id")
	parsed, err := uuid.Parse(id)
	if err != nil {
		abortInvalid(c, invalid("id", "must be a UUID"))
		return
	}
	d, err := s.readIncidentStore().Get(c.Request.Context(), parsed.String())
	switch {
	case errors.Is(err, incidentquery.ErrNotFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no incident "+parsed.String(), "")
	case err != nil:
		s.abortInternal(c, "load incident", err)
	default:
		c.JSON(http.StatusOK, IncidentDetailView{IncidentDetail: *d, WebUIURL: s.workflowURL(d.WorkflowID)})
	}
}

// readIncidentMetrics reports response-time metrics (MTTA, MTTR, time to
// assign, time to first page) of the incidents opened in [from, to), by
// severity and by assignee; the window defaults to the last seven days.
func (s *Server) readIncidentMetrics(c *gin.Context) {
	from, fe := parseIncidentTime(c, "from")
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	to, fe := parseIncidentTime(c, "to")
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	if to.IsZero() {
		to = time.Now().UTC()
	}
	if from.IsZero() {
		from = to.Add(-defaultIncidentMetricsWindow)
	}
	if from.After(to) {
		abortInvalid(c, invalid("from", "must not be after to"))
		return
	}
	m, err := s.readIncidentStore().Metrics(c.Request.Context(), from, to)
	if err != nil {
		s.abortInternal(c, "compute incident metrics", err)
		return
	}
	c.JSON(http.StatusOK, m)
}
