package api

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/heatmap"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// The broker node pages: server-rendered HTML behind the console session
// (console_session.go). The list filters and sorts by its URL query, so
// it works without script; a small same-origin script (refresh.js)
// refreshes its table every nodeRefreshSeconds. Times are shown in the
// hospital's zone. Admins can rescan the fleet from the list.

//go:embed templates/*.html
var nodeTemplateFS embed.FS

//go:embed static/refresh.js
var refreshJS []byte

// nodeRefreshSeconds is how often the node list refreshes its table.
const nodeRefreshSeconds = 30

// localTimeLayout shows a time with its zone's abbreviation.
const localTimeLayout = "2006-01-02 15:04 MST"

// localTime formats t in loc (UTC when nil).
func localTime(loc *time.Location, t time.Time) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(localTimeLayout)
}

// nodeTemplates are the page templates, by page file name.
var nodeTemplates = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"badge": conditionColour,
		"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"tsp": func(t *time.Time) string {
			if t == nil {
				return node.Null
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"num": func(n *int64) string {
			if n == nil {
				return node.Null
			}
			return fmt.Sprint(*n)
		},
		"rate": func(f *float64) string {
			if f == nil {
				return node.Null
			}
			return fmt.Sprintf("%.2f %%", *f)
		},
		"deref": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
		"lts": localTime,
		"ltsp": func(loc *time.Location, t *time.Time) string {
			if t == nil {
				return node.Null
			}
			return localTime(loc, *t)
		},
		"dur":       humanDuration,
		"age":       consoleAge,
		"rfc3339":   func(t *time.Time) string { return t.UTC().Format(time.RFC3339) },
		"sevclass":  severityClass,
		"channel":   channelName,
		"pageclass": pageOutcomeColour,
		"row": func(in consoleIncident, d pageData) incidentRow {
			return incidentRow{I: in, P: d}
		},
	}
	out := map[string]*template.Template{}
	for _, page := range []string{
		"nodes_list.html", "nodes_detail.html", "nodes_login.html", "nodes_error.html", "console_metrics.html",
		"console_work.html", "console_board.html", "console_incident.html",
		"console_oncall.html", "console_capacity.html", "console_messages.html",
	} {
		out[page] = template.Must(template.New(page).Funcs(funcs).ParseFS(nodeTemplateFS, "templates/nodes_layout.html", "templates/"+page))
	}
	return out
}()

// conditionColour is the seed's status colour of a condition: red for the
// failures, blue for TESTING, yellow for error rates and an outdated DWH,
// green for ONLINE.
func conditionColour(condition string) string {
	switch condition {
	case "GAP IN MONITORING", "OFFLINE", "NO IMPORTS", "EXTREME ERROR RATE":
		return "red"
	case "TESTING":
		return "blue"
	case "HIGH ERROR RATE", "LOW ERROR RATE", "DWH OUTDATED":
		return "yellow"
	case "ONLINE":
		return "green"
	}
	return "grey"
}

// nodePageRoutes registers the HTML pages and the sign-in form.
func (s *Server) nodePageRoutes(r *gin.Engine) {
	ui := r.Group("/ui", pageHeaders)
	ui.GET("/login", s.nodeLoginPage)
	ui.POST("/login", s.nodeLogin)
	ui.POST("/logout", s.nodeLogout)
	page := ui.Group("", s.requireStaffPage())
	ui.GET("/static/refresh.js", serveScript(refreshJS))
	page.GET("/nodes", s.nodesPage)
	page.POST("/nodes/scan", s.nodeScanAction)
	page.GET("/nodes/heatmap.png", s.nodeHeatmap(heatmap.PNG))
	page.GET("/nodes/heatmap.svg", s.nodeHeatmap(heatmap.SVG))
	page.GET("/nodes/:id", s.nodePage)
	page.GET("/nodes/:id/export", s.exportNode)
	s.consoleRoutes(r, ui, page)
}

// pageHeaders keeps the pages out of frames and caches and forbids scripts.
// No referrer leaves the site; "same-origin" rather than "no-referrer",
// under which browsers send "Origin: null" with the sign-in form and
// sameOrigin refuses it.
func pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// pageData is what every page template gets.
type pageData struct {
	Title    string
	SignedIn bool
	Message  string
	// Login page.
	Next, Login string
	// Notice is a confirmation (a started rescan), shown as a status.
	Notice string
	// TZ is the hospital's zone, which the node and metrics pages show
	// times in.
	TZ *time.Location
	// List page.
	Items       []nodeRow
	GeneratedAt time.Time
	Nodes       nodeListQuery
	Conditions  []string
	Sorts       []nodeSort
	Admin       bool
	Refresh     int
	// Detail page.
	Detail *node.Detail
	Year   int
	// Metrics page.
	Metrics *metricsView

	// Every signed-in page (renderPage fills these): the CSRF token of
	// the session, the viewer's staff id, and whether they are a charge
	// nurse or an admin.
	CSRF   string
	Me     string
	Charge bool
	// Nav names the current console page; Scripts loads the console
	// script; Back is where the page's forms return.
	Nav     string
	Scripts bool
	Back    string
	Now     time.Time
	// My work.
	Mine, Claimable []consoleIncident
	LastEventID     int64
	// Board.
	Board                       []boardRow
	Filter                      boardFilter
	Roles, Severities, Statuses []string
	// Incident detail.
	Incident       consoleIncident
	IncidentDetail *incident.IncidentDetail
	Timeline       []timelineEntry
	WebUIURL       string
	Pages          []incident.PageOutcome
	// On call.
	OnCall *oncallView
	// Capacity page.
	Capacity *capacityView
	// Messages page (console_messages.go); Clinician shows its link.
	Messages  *messagesView
	Clinician bool
}

// incidentRow is an incident with its page's data, for the shared
// incident card and action templates.
type incidentRow struct {
	I consoleIncident
	P pageData
}

// consoleAge is how long ago t was, rounded: "45s", "12m", "3h 05m", "2d 4h".
func consoleAge(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// severityClass is the badge colour of a severity.
func severityClass(sev string) string {
	switch sev {
	case "CRITICAL":
		return "red"
	case "HIGH":
		return "orange"
	case "MEDIUM":
		return "yellow"
	}
	return "blue"
}

// renderPage executes a page into memory first, so a template failure is a
// clean 500 and not half a page.
func (s *Server) renderPage(c *gin.Context, status int, page string, data pageData) {
	if p := principal(c); p != nil {
		data.CSRF, data.Me, data.Charge = s.csrfToken(c), p.Subject, isCharge(p)
		data.Clinician = data.SignedIn && s.consoleMayMessage(c)
	}
	var buf bytes.Buffer
	if err := nodeTemplates[page].Execute(&buf, data); err != nil {
		s.abortInternal(c, "render "+page, err)
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func (s *Server) pageError(c *gin.Context, status int, title, message string) {
	s.renderPage(c, status, "nodes_error.html", pageData{Title: title, Message: message, SignedIn: principal(c) != nil})
	c.Abort()
}

// pageLoadFailed answers a console page whose record could not be loaded
// (what failed): the 404 page saying missing when err is notFound, a 500
// for any other error. It returns false, answering nothing, when err is nil.
func (s *Server) pageLoadFailed(c *gin.Context, what string, err, notFound error, missing string) bool {
	return s.lookupFailed(c, what, err, notFound, func() { s.pageError(c, http.StatusNotFound, "Not found", missing) })
}

// lookupFailed answers a failed lookup of a record (what): with answerMissing
// when err is notFound, a 500 for any other error. It returns false,
// answering nothing, when err is nil.
func (s *Server) lookupFailed(c *gin.Context, what string, err, notFound error, answerMissing func()) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, notFound):
		answerMissing()
	default:
		s.abortInternal(c, what, err)
	}
	return true
}

// nodeRow is one node of the list with the link to its monitor's run.
type nodeRow struct {
	node.Summary
	RunURL string
}

// nodeListQuery is the node list's URL query: a condition, a name search
// and the order.
type nodeListQuery struct {
	Status, Q, Sort string
}

// SortedBy is the list's URL with the same filters in another order.
func (q nodeListQuery) SortedBy(sort string) string {
	v := url.Values{}
	for k, val := range map[string]string{"status": q.Status, "q": q.Q, "sort": sort} {
		if val != "" && (k != "sort" || val != nodeSorts[0].Value) {
			v.Set(k, val)
		}
	}
	if len(v) == 0 {
		return "/ui/nodes"
	}
	return "/ui/nodes?" + v.Encode()
}

// URL is the list's URL.
func (q nodeListQuery) URL() string { return q.SortedBy(q.Sort) }

// nodeSort is an order of the node list.
type nodeSort struct{ Value, Name string }

// nodeSorts are the list's orders; the first is the default.
var nodeSorts = []nodeSort{
	{"id", "Node id"},
	{"name", "Name"},
	{"status", "Status, worst first"},
	{"contact", "Last contact, oldest first"},
}

// nodeSearchMax bounds the name search.
const nodeSearchMax = 100

// parseNodeListQuery reads the list's query: status and label as GET
// /v1/nodes reads them (nodeSummaryFilter), q and sort. The filter form
// sends every field, "status=" for any status; empty fields count as
// absent (GET /v1/nodes refuses an empty status).
func parseNodeListQuery(query url.Values) (nodeListQuery, node.SummaryFilter, *fieldError) {
	for k, v := range query {
		if len(v) == 1 && strings.TrimSpace(v[0]) == "" {
			delete(query, k)
		}
	}
	q := nodeListQuery{Status: query.Get("status"), Q: strings.TrimSpace(query.Get("q")), Sort: query.Get("sort")}
	f, fe := nodeSummaryFilter(query)
	if fe != nil {
		return q, f, fe
	}
	if len(q.Q) > nodeSearchMax || !validText(q.Q, false) {
		return q, f, invalid("q", fmt.Sprintf("must be a name or node id of at most %d characters", nodeSearchMax))
	}
	if q.Sort == "" {
		q.Sort = nodeSorts[0].Value
	}
	if !slices.ContainsFunc(nodeSorts, func(s nodeSort) bool { return s.Value == q.Sort }) {
		names := make([]string, len(nodeSorts))
		for i, s := range nodeSorts {
			names[i] = s.Value
		}
		return q, f, invalid("sort", "must be one of "+strings.Join(names, ", "))
	}
	return q, f, nil
}

// searchNodes keeps the nodes whose name or id contains q (any case).
func searchNodes(items []node.Summary, q string) []node.Summary {
	if q == "" {
		return items
	}
	q = strings.ToLower(q)
	return slices.DeleteFunc(items, func(n node.Summary) bool {
		return !strings.Contains(strings.ToLower(n.CommonName), q) && !strings.Contains(strings.ToLower(n.NodeID), q)
	})
}

// statusRank orders headlines as nodehealth.Precedence (worst first),
// nodes without one last.
func statusRank(headline string) int {
	if i := slices.Index(nodehealth.Precedence, nodehealth.Condition(headline)); i >= 0 {
		return i
	}
	return len(nodehealth.Precedence)
}

// sortNodes orders the list (the store gives it by node id); ties keep
// the node id order.
func sortNodes(items []node.Summary, by string) {
	timeOf := func(t *time.Time) int64 {
		if t == nil {
			return -1 << 62 // never contacted: oldest
		}
		return t.UnixNano()
	}
	switch by {
	case "name":
		slices.SortStableFunc(items, func(a, b node.Summary) int {
			return cmp.Compare(strings.ToLower(a.CommonName), strings.ToLower(b.CommonName))
		})
	case "status":
		slices.SortStableFunc(items, func(a, b node.Summary) int { return cmp.Compare(statusRank(a.Headline), statusRank(b.Headline)) })
	case "contact":
		slices.SortStableFunc(items, func(a, b node.Summary) int { return cmp.Compare(timeOf(a.LastContact), timeOf(b.LastContact)) })
	}
}

// nodesPage is the fleet summary with the heatmap.
func (s *Server) nodesPage(c *gin.Context) {
	notice := ""
	if c.Query("scan") == "started" {
		notice = "Fleet scan started: the table shows its results once the scan has checked the nodes (it refreshes itself)."
	}
	s.renderNodes(c, http.StatusOK, "", notice, c.Request.URL.Query())
}

// renderNodes renders the node list of query, with a
// message (a refusal) or a notice. A bad query is a 400 naming the field,
// on the page above its form.
func (s *Server) renderNodes(c *gin.Context, status int, message, notice string, query url.Values) {
	now := time.Now().UTC()
	q, f, fe := parseNodeListQuery(query)
	data := pageData{
		Title: "Broker nodes", SignedIn: true, Nav: "nodes", GeneratedAt: now, TZ: s.HospitalTZ,
		Message: message, Notice: notice, Nodes: q, Conditions: nodeConditions(), Sorts: nodeSorts,
		Admin: hasAccess(principal(c), auth.AccessAdmin), Refresh: nodeRefreshSeconds,
	}
	if fe != nil {
		data.Message = "Refused: " + fe.Field + " " + fe.Message + "."
		c.Header("Content-Security-Policy", consoleScriptCSP)
		s.renderPage(c, http.StatusBadRequest, "nodes_list.html", data)
		return
	}
	items, err := s.nodeStore().Summary(c.Request.Context(), now, f)
	if err != nil {
		s.abortInternal(c, "node summary", err)
		return
	}
	items = searchNodes(items, q.Q)
	sortNodes(items, q.Sort)
	data.Items = make([]nodeRow, len(items))
	for i, it := range items {
		data.Items[i] = nodeRow{Summary: it, RunURL: s.workflowURL(node.WorkflowID(it.NodeID))}
	}
	c.Header("Content-Security-Policy", consoleScriptCSP)
	s.renderPage(c, status, "nodes_list.html", data)
}

// nodeScanAction is the list's rescan form (admins): it triggers the
// fleet scan as POST /v1/nodes/scan does, then returns to the list it came
// from with a notice; a refusal re-renders the list with the reason.
func (s *Server) nodeScanAction(c *gin.Context) {
	if !s.checkConsoleForm(c) {
		return
	}
	if !hasAccess(principal(c), auth.AccessAdmin) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "Only admins can rescan the fleet.")
		return
	}
	back, err := url.Parse(safeNext(c.PostForm("back")))
	if err != nil || back.Path != "/ui/nodes" {
		back = &url.URL{Path: "/ui/nodes"}
	}
	err = s.triggerFleetScan(c.Request.Context())
	if err == nil {
		q := back.Query()
		q.Set("scan", "started")
		back.RawQuery = q.Encode()
		c.Redirect(http.StatusSeeOther, back.String())
		return
	}
	status, _, reason, ok := fleetScanRefusal(err)
	if !ok {
		s.Logger.ErrorContext(c.Request.Context(), "console: trigger fleet scan", "err", err, "request_id", requestID(c))
		status, reason = http.StatusServiceUnavailable, "Vigil could not reach the workflow service just now; try again in a few seconds"
	}
	// Show the list the form came from.
	s.renderNodes(c, status, "Rescan refused: "+reason+".", "", back.Query())
}

// nodePage is one node's details.
func (s *Server) nodePage(c *gin.Context) {
	id := c.Param("id")
	if !node.NodeIDPattern.MatchString(id) {
		s.pageError(c, http.StatusBadRequest, "Bad request", "That is not a node id.")
		return
	}
	now := time.Now().UTC()
	d, err := s.nodeStore().Detail(c.Request.Context(), id, now)
	if s.pageLoadFailed(c, "node detail", err, node.ErrNotFound, "There is no node "+id+".") {
		return
	}
	s.renderPage(c, http.StatusOK, "nodes_detail.html", pageData{
		Title: d.Name, SignedIn: true, Nav: "nodes", Detail: d, Year: now.Year(), TZ: s.HospitalTZ,
		WebUIURL: s.workflowURL(node.WorkflowID(d.NodeID)),
	})
}
