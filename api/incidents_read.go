package api

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/incident"
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
	incident.Incident
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
	incident.IncidentDetail
	// WebUIURL links to the incident's workflow in the Temporal Web UI.
	WebUIURL string `json:"web_ui_url,omitempty"`
}

// IncidentMetricsReport answers GET /v1/incidents/metrics.
type IncidentMetricsReport = incident.Metrics

// defaultIncidentMetricsWindow is the metrics window when the request sets
// no from.
const defaultIncidentMetricsWindow = 7 * 24 * time.Hour

var (
	incidentReadStaffIDPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	incidentReadAlertTypePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)
)

// incidentStore is the incident capability's store.
func (s *Server) incidentStore() *incident.Store {
	return s.Stores.Incidents
}

// readIncidentList lists incidents, newest first, with filters and keyset
// pagination.
func (s *Server) readIncidentList(c *gin.Context) {
	f, fe := parseIncidentFilter(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	page, err := s.incidentStore().List(c.Request.Context(), f)
	if err != nil {
		s.abortInternal(c, "list incidents", err)
		return
	}
	out := IncidentListPage{Items: make([]IncidentListItem, 0, len(page.Items)), NextCursor: nextCursor(page.Next)}
	for _, in := range page.Items {
		out.Items = append(out.Items, IncidentListItem{Incident: in, WebUIURL: s.workflowURL(in.WorkflowID)})
	}
	c.JSON(http.StatusOK, out)
}

// parseIncidentFilter reads the list's query parameters.
func parseIncidentFilter(c *gin.Context) (incident.Filter, *fieldError) {
	var (
		f  incident.Filter
		fe *fieldError
	)
	if f.Statuses, fe = enumListParam(c, "status", incident.Statuses); fe != nil {
		return f, fe
	}
	if f.Severities, fe = enumListParam(c, "severity", incident.Severities); fe != nil {
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
	if f.From, f.To, fe = timeWindow(c); fe != nil {
		return f, fe
	}
	if f.Limit, f.After, fe = keysetPage(c, incident.DefaultLimit, incident.MaxLimit, incident.DecodeCursor); fe != nil {
		return f, fe
	}
	return f, nil
}

// readIncident returns one incident with its full audit timeline.
func (s *Server) readIncident(c *gin.Context) {
	id := c.Param("id")
	parsed, err := uuid.Parse(id)
	if err != nil {
		abortInvalid(c, invalid("id", "must be a UUID"))
		return
	}
	d, err := s.incidentStore().Get(c.Request.Context(), parsed.String())
	switch {
	case errors.Is(err, incident.ErrNotFound):
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
	from, to, fe := timeWindow(c)
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
	m, err := s.incidentStore().Metrics(c.Request.Context(), from, to)
	s.answerOK(c, "compute incident metrics", m, err)
}
