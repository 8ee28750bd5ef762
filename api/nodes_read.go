package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/heatmap"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// NodeSummaryList answers GET /v1/nodes.
type NodeSummaryList struct {
	Items []node.Summary `json:"items"`
	// GeneratedAt is the time the summary was computed at ("today" is its
	// UTC day; the GAP overlay is relative to it).
	GeneratedAt time.Time `json:"generated_at"`
}

// nodeConditions are the condition names: the headline precedence, then
// DWH OUTDATED.
func nodeConditions() []string {
	out := make([]string, 0, len(nodehealth.Precedence)+1)
	for _, c := range nodehealth.Precedence {
		out = append(out, string(c))
	}
	if !slices.Contains(out, string(nodehealth.DWHOutdated)) {
		out = append(out, string(nodehealth.DWHOutdated))
	}
	return out
}

// nodeStatusParam reads ?status=: a comma-separated (or repeated) list of
// conditions, spelt as in the API ("NO IMPORTS") or with underscores
// ("NO_IMPORTS"), case-insensitive.
func nodeStatusParam(query url.Values) ([]string, *fieldError) {
	raw, ok := query["status"]
	if !ok {
		return nil, nil
	}
	allowed := nodeConditions()
	var out []string
	for _, r := range raw {
		for v := range strings.SplitSeq(r, ",") {
			v = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(v), "_", " "))
			if !slices.Contains(allowed, v) {
				return nil, invalid("status", "must be a comma-separated list of "+strings.Join(allowed, ", "))
			}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// listNodes returns the fleet summary. ?status= keeps nodes with one of the
// given conditions active, ?label= nodes with that label.
func (s *Server) listNodes(c *gin.Context) {
	f, fe := nodeSummaryFilter(c.Request.URL.Query())
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	now := time.Now().UTC()
	items, err := s.nodeStore().Summary(c.Request.Context(), now, f)
	s.answerOK(c, "node summary", NodeSummaryList{Items: items, GeneratedAt: now}, err)
}

// nodeSummaryFilter reads ?status= and ?label= of a query.
func nodeSummaryFilter(query url.Values) (node.SummaryFilter, *fieldError) {
	var (
		f  node.SummaryFilter
		fe *fieldError
	)
	if f.Conditions, fe = nodeStatusParam(query); fe != nil {
		return f, fe
	}
	if vs, ok := query["label"]; ok {
		v := strings.TrimSpace(vs[0])
		if v == "" || len(v) > 100 || !validText(v, false) {
			return f, invalid("label", "must be a label of 1 to 100 characters")
		}
		f.Label = v
	}
	return f, nil
}

// getNode returns everything known about a node; 404 when it is neither
// listed by the broker nor has settings.
func (s *Server) getNode(c *gin.Context) {
	id, ok := nodeIDParam(c)
	if !ok {
		return
	}
	d, ok := s.loadNodeDetail(c, id)
	if ok {
		c.JSON(http.StatusOK, d)
	}
}

func (s *Server) loadNodeDetail(c *gin.Context, id string) (*node.Detail, bool) {
	d, err := s.nodeStore().Detail(c.Request.Context(), id, time.Now().UTC())
	if errors.Is(err, node.ErrNotFound) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no node "+id, "")
		return nil, false
	}
	if err != nil {
		s.abortInternal(c, "node detail", err)
		return nil, false
	}
	return d, true
}

// heatmapContentTypes are the media types of the heatmap formats.
var heatmapContentTypes = map[heatmap.Format]string{
	heatmap.PNG: "image/png",
	heatmap.SVG: "image/svg+xml",
}

// nodeHeatmap draws every node's daily error rate over ?days= UTC days
// (default 42). The image is rendered in memory first, so a failure is
// still a JSON error and not half an image.
func (s *Server) nodeHeatmap(format heatmap.Format) gin.HandlerFunc {
	return func(c *gin.Context) {
		days, fe := intParam(c, "days", node.DefaultHeatmapDays, 1, node.MaxHeatmapDays)
		if fe != nil {
			abortInvalid(c, fe)
			return
		}
		m, err := s.nodeStore().Heatmap(c.Request.Context(), time.Now().UTC(), days)
		if err != nil {
			s.abortInternal(c, "heatmap matrix", err)
			return
		}
		var buf bytes.Buffer
		if err := heatmap.Render(&buf, format, m); err != nil {
			s.abortInternal(c, "render heatmap", err)
			return
		}
		c.Header("Cache-Control", "private, no-cache")
		c.Data(http.StatusOK, heatmapContentTypes[format], buf.Bytes())
	}
}

// exportNode streams one year of a node's stats, errors or resource
// changes as CSV (';', header row, '-' for missing values), straight from
// the database rows.
func (s *Server) exportNode(c *gin.Context) {
	id, ok := nodeIDParam(c)
	if !ok {
		return
	}
	yearText, ok := c.GetQuery("year")
	if !ok {
		abortInvalid(c, invalid("year", "is required, such as 2026"))
		return
	}
	year, err := strconv.Atoi(yearText)
	if err != nil || year < node.MinExportYear || year > node.MaxExportYear {
		abortInvalid(c, invalid("year", "must be a year from 1970 to 9999"))
		return
	}
	kind := c.Query("kind")
	if !slices.Contains(node.ExportKinds, kind) {
		abortInvalid(c, invalid("kind", "is required: "+strings.Join(node.ExportKinds, ", ")))
		return
	}
	exists, err := s.nodeStore().Exists(c.Request.Context(), id)
	if err != nil {
		s.abortInternal(c, "look up node", err)
		return
	}
	if !exists {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no node "+id, "")
		return
	}
	exp, err := s.nodeStore().OpenExport(c.Request.Context(), id, year, kind)
	if err != nil {
		s.abortInternal(c, "open export", err)
		return
	}
	defer func() { _ = exp.Close() }()
	// The id is [A-Za-z0-9_-], so the file name needs no quoting beyond
	// the quotes.
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+id+"_"+kind+"_"+strconv.Itoa(year)+`.csv"`)
	c.Header("Cache-Control", "private, no-store")
	c.Status(http.StatusOK)
	if n, err := exp.WriteCSV(c.Writer); err != nil {
		if c.Request.Context().Err() != nil {
			return // the client went away
		}
		// The status is sent: log, and break the connection so the client
		// sees a failed download rather than a complete-looking file.
		s.Logger.ErrorContext(c.Request.Context(), "node export failed mid-stream", "err", err, "node_id", id,
			"kind", kind, "year", year, "rows", n, "request_id", requestID(c))
		panic(http.ErrAbortHandler)
	}
}
