package api

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/heatmap"
)

// The broker node pages: server-rendered HTML, no JavaScript, behind the
// console session (console_session.go).

//go:embed templates/*.html
var nodeTemplateFS embed.FS

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
		"age":      consoleAge,
		"rfc3339":  func(t *time.Time) string { return t.UTC().Format(time.RFC3339) },
		"sevclass": severityClass,
		"row": func(in consoleIncident, d pageData) incidentRow {
			return incidentRow{I: in, P: d}
		},
	}
	out := map[string]*template.Template{}
	for _, page := range []string{
		"nodes_list.html", "nodes_detail.html", "nodes_login.html", "nodes_error.html",
		"console_work.html", "console_board.html", "console_incident.html", "console_messages.html",
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
	page.GET("/nodes", s.nodesPage)
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
	// List page.
	Items       []node.Summary
	GeneratedAt time.Time
	// Detail page.
	Detail *node.Detail
	Year   int

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

// nodesPage is the fleet summary with the heatmap.
func (s *Server) nodesPage(c *gin.Context) {
	f, fe := nodeSummaryFilter(c)
	if fe != nil {
		s.pageError(c, http.StatusBadRequest, "Bad request", fe.Field+": "+fe.Message)
		return
	}
	now := time.Now().UTC()
	items, err := s.nodeStore().Summary(c.Request.Context(), now, f)
	if err != nil {
		s.abortInternal(c, "node summary", err)
		return
	}
	s.renderPage(c, http.StatusOK, "nodes_list.html", pageData{Title: "Broker nodes", SignedIn: true, Nav: "nodes", Items: items, GeneratedAt: now})
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
	if errors.Is(err, node.ErrNotFound) {
		s.pageError(c, http.StatusNotFound, "Not found", "There is no node "+id+".")
		return
	}
	if err != nil {
		s.abortInternal(c, "node detail", err)
		return
	}
	s.renderPage(c, http.StatusOK, "nodes_detail.html", pageData{Title: d.Name, SignedIn: true, Nav: "nodes", Detail: d, Year: now.Year()})
}
