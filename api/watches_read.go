package api

import (
	"net/http"
	"regexp"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// watchReadRoutes registers the capacity read endpoints: the current status
// of monitored services (by default those not at HIGH), the history of
// status changes, and every service placed on a map. Any authenticated
// staff member may read them.
func (s *Server) watchReadRoutes(v1 *gin.RouterGroup) {
	g := v1.Group("", s.requireStaff())
	g.GET("/statuses", s.readWatchStatuses)
	g.GET("/changes", s.readWatchChanges)
	g.GET("/coverage", s.readWatchCoverage)
}

// StatusList answers GET /v1/statuses.
type StatusList struct {
	// Services are most urgent first: NONE, LOW, reset (""), HIGH; then by
	// name.
	Services []watch.Status `json:"services"`
}

// ChangeListPage answers GET /v1/changes.
type ChangeListPage struct {
	Items []watch.RecordedChange `json:"items"`
	// NextCursor fetches the next page; nil on the last one.
	NextCursor *string `json:"next_cursor"`
}

// CoverageMap answers GET /v1/coverage.
type CoverageMap struct {
	Services []watch.CoverageService `json:"services"`
}

// capacityParamReset is the capacity query value meaning "reset" (stored
// as "").
const capacityParamReset = "RESET"

// capacityParamValues are the values the capacity parameter accepts.
var capacityParamValues = []string{directory.CapacityHigh, directory.CapacityLow, directory.CapacityNone, capacityParamReset}

// defaultStatusCapacities is the "services not at HIGH" view: what
// GET /v1/statuses lists without a capacity parameter.
var defaultStatusCapacities = []string{directory.CapacityNone, directory.CapacityLow, watch.CapacityReset}

// watchReadServiceIDPattern is what a directory service id looks like.
var watchReadServiceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// readWatchStatuses lists the current status of monitored services whose
// capacity is in the capacity parameter (default LOW, NONE and RESET: every
// service not at HIGH).
func (s *Server) readWatchStatuses(c *gin.Context) {
	values, fe := enumListParam(c, "capacity", capacityParamValues)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	capacities := defaultStatusCapacities
	if values != nil {
		capacities = make([]string, 0, len(values))
		for _, v := range values {
			if v == capacityParamReset {
				v = watch.CapacityReset
			}
			if !slices.Contains(capacities, v) {
				capacities = append(capacities, v)
			}
		}
	}
	statuses, err := s.watchStore().Statuses(c.Request.Context(), capacities)
	s.answerOK(c, "list service statuses", StatusList{Services: statuses}, err)
}

// readWatchChanges lists status changes, newest first, with filters and
// keyset pagination.
func (s *Server) readWatchChanges(c *gin.Context) {
	f, fe := parseWatchChangeFilter(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	page, err := s.watchStore().Changes(c.Request.Context(), f)
	if err != nil {
		s.abortInternal(c, "list status changes", err)
		return
	}
	c.JSON(http.StatusOK, ChangeListPage{Items: page.Items, NextCursor: nextCursor(page.Next)})
}

// parseWatchChangeFilter reads the change list's query parameters.
func parseWatchChangeFilter(c *gin.Context) (watch.ChangeFilter, *fieldError) {
	var (
		f  watch.ChangeFilter
		fe *fieldError
	)
	if v, ok := c.GetQuery("service_id"); ok {
		if !watchReadServiceIDPattern.MatchString(v) {
			return f, invalid("service_id", "must be a service id (1 to 64 letters, digits, '.', '_', ':' or '-')")
		}
		f.ServiceID = v
	}
	if v, ok := c.GetQuery("watch_id"); ok {
		id, err := uuid.Parse(v)
		if err != nil {
			return f, invalid("watch_id", "must be a UUID")
		}
		f.WatchID = id.String()
	}
	if f.From, f.To, fe = timeWindow(c); fe != nil {
		return f, fe
	}
	if f.Limit, f.Cursor, fe = keysetPage(c, watch.DefaultLimit, watch.MaxLimit, watch.DecodeCursor); fe != nil {
		return f, fe
	}
	return f, nil
}

// readWatchCoverage returns every monitored service with its WGS84 position
// (when it has one), ready for a map.
func (s *Server) readWatchCoverage(c *gin.Context) {
	services, err := s.watchStore().Coverage(c.Request.Context())
	s.answerOK(c, "list service coverage", CoverageMap{Services: services}, err)
}
