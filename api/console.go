package api

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/workflows"
)

// The staff console: server-rendered pages under /ui behind the console
// session (console_session.go), sharing the node pages' layout. My work
// (/ui/) lists the caller's incidents and the open ones they may claim;
// the board (/ui/board, charge nurses and admins) lists every open
// incident; the detail page (/ui/incidents/:id) shows one incident's
// timeline. The action forms POST to /ui/incidents/:id/:action, which runs
// the same signed workflow Update as the JSON API (applyTransition). Every
// form carries a CSRF token bound to the session. My work loads one small
// script (/ui/static/console.js) that follows /ui/stream, the caller's
// notification stream, to refresh the list live.

//go:embed static/console.js static/favicon.svg
var consoleStatic embed.FS

// consoleJS is the console's only script; consoleIcon its tab icon.
var consoleJS, consoleIcon = mustStatic("static/console.js"), mustStatic("static/favicon.svg")

func mustStatic(name string) []byte {
	b, err := consoleStatic.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

const (
	// csrfField is the hidden form field of the CSRF token.
	csrfField = "csrf"
	// csrfPurpose separates the console's CSRF tokens from the other proofs
	// the same keyring signs.
	csrfPurpose = "vigil/console/csrf"
	// consoleScriptCSP is the policy of pages that load the console script:
	// the strict page policy plus same-origin scripts and connections.
	consoleScriptCSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// consoleListLimit bounds each list of the console.
	consoleListLimit = incident.MaxLimit
)

// consoleActions maps a form action to its workflow Update.
var consoleActions = map[string]string{
	"acknowledge": workflows.IncidentUpdateAcknowledge,
	"start":       workflows.IncidentUpdateStart,
	"resolve":     workflows.IncidentUpdateResolve,
	"claim":       workflows.IncidentUpdateClaim,
	"note":        workflows.IncidentUpdateNote,
	"reassign":    workflows.IncidentUpdateReassign,
}

// serveScript serves an embedded console script, which browsers revalidate
// on every load (no-cache).
func serveScript(script []byte) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", script)
	}
}

// consoleRoutes registers the console pages on the signed-in page group,
// and / as a redirect to My work.
func (s *Server) consoleRoutes(r *gin.Engine, ui, page *gin.RouterGroup) {
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, pageHome) })
	ui.GET("/static/console.js", serveScript(consoleJS))
	ui.GET("/static/favicon.svg", func(c *gin.Context) {
		c.Header("Cache-Control", "max-age=86400")
		c.Data(http.StatusOK, "image/svg+xml", consoleIcon)
	})
	page.GET("/", s.workPage)
	page.GET("/board", s.boardPage)
	page.GET("/incidents/:id", s.incidentPage)
	page.POST("/incidents/:id/:action", s.consoleAction)
	page.GET("/stream", s.streamNotifications)
	s.oncallRoutes(page)
	page.GET("/metrics", s.metricsPage)
	s.capacityRoutes(ui, page)
	s.consoleMessageRoutes(ui, page)
}

// isCharge reports whether the claims carry charge or admin access.
func isCharge(p *auth.Claims) bool {
	return p != nil && (p.Access == auth.AccessCharge || p.Access == auth.AccessAdmin)
}

// csrfToken is the CSRF token of the caller's session: the HMAC of its
// session id (empty without a session).
func (s *Server) csrfToken(c *gin.Context) string {
	p := principal(c)
	if p == nil || p.SessionID == "" || s.TransitionKeys == nil {
		return ""
	}
	return s.TransitionKeys.Sign(actionproof.Message(csrfPurpose, p.SessionID))
}

// checkCSRF checks a console form's token against the caller's session. A
// request authenticated by an Authorization header (a tool, not a
// browser's cookie) cannot be forged cross-site and needs none.
func (s *Server) checkCSRF(c *gin.Context) bool {
	if c.GetHeader("Authorization") != "" {
		return true
	}
	p := principal(c)
	return p != nil && sameOrigin(c) && s.validCSRF(p.SessionID, c.PostForm(csrfField))
}

// checkConsoleForm admits a console form post: a URL-encoded body of at
// most 64 KiB with the session's CSRF token from this origin. Otherwise it
// answers an error page (415 or 403) and returns false.
func (s *Server) checkConsoleForm(c *gin.Context) bool {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		s.pageError(c, http.StatusUnsupportedMediaType, "Unsupported form", "Send the console's form.")
		return false
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	if !s.checkCSRF(c) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "This form has expired or came from another site. Reload the page and try again.")
		return false
	}
	return true
}

// validCSRF reports whether token is the CSRF token of session sid.
func (s *Server) validCSRF(sid, token string) bool {
	if sid == "" || s.TransitionKeys == nil {
		return false
	}
	return s.TransitionKeys.Verify(actionproof.Message(csrfPurpose, sid), token) == nil
}

// consoleIncident is an incident as the console lists it.
type consoleIncident struct {
	incident.Incident
	// Mine: assigned to the viewer.
	Mine bool
	// CanClaim: the viewer may claim it.
	CanClaim bool
}

// workPage is My work.
func (s *Server) workPage(c *gin.Context) { s.renderWork(c, http.StatusOK, "") }

func (s *Server) renderWork(c *gin.Context, status int, message string) {
	ctx := c.Request.Context()
	p := principal(c)
	mine, err := s.incidentStore().List(ctx, incident.Filter{
		AssignedTo: p.Subject, Limit: consoleListLimit,
		Statuses: []string{incident.StatusAssigned, incident.StatusAcknowledged, incident.StatusInProgress},
	})
	if err != nil {
		s.abortInternal(c, "list my incidents", err)
		return
	}
	claimStatuses := []string{incident.StatusOpen, incident.StatusAssigned}
	if isCharge(p) {
		claimStatuses = append(claimStatuses, incident.StatusAcknowledged)
	}
	open, err := s.incidentStore().List(ctx, incident.Filter{Statuses: claimStatuses, Limit: consoleListLimit})
	if err != nil {
		s.abortInternal(c, "list claimable incidents", err)
		return
	}
	latest, err := s.incidentStore().ListNotifications(ctx, incident.NotificationFilter{StaffID: p.Subject, Limit: 1})
	if err != nil {
		s.abortInternal(c, "latest notification", err)
		return
	}
	data := pageData{Title: "My work", SignedIn: true, Nav: "work", Message: message, Scripts: true, Back: pageHome, Now: time.Now().UTC()}
	for _, in := range mine.Items {
		data.Mine = append(data.Mine, consoleIncident{Incident: in, Mine: true})
	}
	for _, in := range open.Items {
		if in.AssignedTo != nil && *in.AssignedTo == p.Subject {
			continue
		}
		data.Claimable = append(data.Claimable, consoleIncident{Incident: in, CanClaim: true})
	}
	if len(latest) > 0 {
		data.LastEventID = latest[0].ID
	}
	c.Header("Content-Security-Policy", consoleScriptCSP)
	s.renderPage(c, status, "console_work.html", data)
}

// boardFilter is the board's URL query: severity, status and role.
type boardFilter struct {
	Severity, Status, Role string
}

// boardRow is one incident of the board.
type boardRow struct {
	consoleIncident
	// NextEscalation is when the workflow's next page is due (the next
	// escalation step while ASSIGNED, the next start reminder while
	// ACKNOWLEDGED), nil when there is none or the workflow did not answer
	// in time. The store keeps the step, not its due time, so the board
	// asks each run's state query.
	NextEscalation *time.Time
}

// Bounds of the board's state queries.
const (
	boardQueryTimeout     = 2 * time.Second
	boardQueryConcurrency = 8
)

// nextEscalations fills the rows' NextEscalation from their workflows'
// state queries, a few at a time, within boardQueryTimeout; a query that
// fails or is late leaves its row without one.
func (s *Server) nextEscalations(ctx context.Context, rows []boardRow) {
	ctx, cancel := context.WithTimeout(ctx, boardQueryTimeout)
	defer cancel()
	sem := make(chan struct{}, boardQueryConcurrency)
	var wg sync.WaitGroup
	for i := range rows {
		if rows[i].Status != incident.StatusAssigned && rows[i].Status != incident.StatusAcknowledged {
			continue
		}
		wg.Add(1)
		go func(r *boardRow) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			res, err := s.Temporal.QueryWorkflow(ctx, r.WorkflowID, "", workflows.IncidentQueryState)
			var st workflows.IncidentState
			if err == nil {
				err = res.Get(&st)
			}
			if err != nil {
				if ctx.Err() == nil {
					s.Logger.WarnContext(ctx, "board: query incident state", "incident_id", r.ID, "err", err)
				}
				return
			}
			if !st.NextPageDue.IsZero() && st.Status == r.Status {
				due := st.NextPageDue.UTC()
				r.NextEscalation = &due
			}
		}(&rows[i])
	}
	wg.Wait()
}

// severityRank orders severities, most severe first.
func severityRank(sev string) int {
	if i := slices.Index(incident.Severities, sev); i >= 0 {
		return i
	}
	return len(incident.Severities)
}

// boardPage is the incident board (charge nurses and admins).
func (s *Server) boardPage(c *gin.Context) {
	s.renderBoard(c, http.StatusOK, "", c.Request.URL.Query())
}

func (s *Server) renderBoard(c *gin.Context, status int, message string, q url.Values) {
	p := principal(c)
	if !isCharge(p) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "The incident board is for charge nurses and admins.")
		return
	}
	f := boardFilter{Severity: q.Get("severity"), Status: q.Get("status"), Role: q.Get("role")}
	var filter incident.Filter
	filter.Limit = consoleListLimit
	openStatuses := []string{incident.StatusOpen, incident.StatusAssigned, incident.StatusAcknowledged, incident.StatusInProgress}
	switch {
	case f.Status == "":
		filter.Statuses = openStatuses
	case slices.Contains(openStatuses, f.Status):
		filter.Statuses = []string{f.Status}
	default:
		s.pageError(c, http.StatusBadRequest, "Bad request", "status must be one of "+strings.Join(openStatuses, ", ")+".")
		return
	}
	if f.Severity != "" {
		if !slices.Contains(incident.Severities, f.Severity) {
			s.pageError(c, http.StatusBadRequest, "Bad request", "severity must be one of "+strings.Join(incident.Severities, ", ")+".")
			return
		}
		filter.Severities = []string{f.Severity}
	}
	if f.Role != "" && !incidentReadAlertTypePattern.MatchString(f.Role) {
		s.pageError(c, http.StatusBadRequest, "Bad request", "role must be a role such as NURSE.")
		return
	}
	list, err := s.incidentStore().List(c.Request.Context(), filter)
	if err != nil {
		s.abortInternal(c, "list board", err)
		return
	}
	roles := map[string]bool{}
	if f.Role != "" {
		roles[f.Role] = true
	}
	var rows []boardRow
	for _, in := range list.Items {
		if in.AssignedRole != "" {
			roles[in.AssignedRole] = true
		}
		if f.Role != "" && in.AssignedRole != f.Role {
			continue
		}
		mine := in.AssignedTo != nil && *in.AssignedTo == p.Subject
		rows = append(rows, boardRow{consoleIncident: consoleIncident{Incident: in, Mine: mine, CanClaim: !mine}})
	}
	s.nextEscalations(c.Request.Context(), rows)
	sort.SliceStable(rows, func(i, j int) bool {
		if a, b := severityRank(rows[i].Severity), severityRank(rows[j].Severity); a != b {
			return a < b
		}
		return rows[i].OpenedAt.Before(rows[j].OpenedAt)
	})
	roleList := make([]string, 0, len(roles))
	for r := range roles {
		roleList = append(roleList, r)
	}
	slices.Sort(roleList)
	back := "/ui/board"
	if enc := (url.Values{"severity": {f.Severity}, "status": {f.Status}, "role": {f.Role}}); f != (boardFilter{}) {
		for k, v := range enc {
			if v[0] == "" {
				delete(enc, k)
			}
		}
		back += "?" + enc.Encode()
	}
	c.Header("Content-Security-Policy", consoleScriptCSP)
	s.renderPage(c, status, "console_board.html", pageData{
		Title: "Incident board", SignedIn: true, Nav: "board", Message: message, Back: back, Now: time.Now().UTC(), Scripts: true,
		Board: rows, Filter: f, Roles: roleList, Severities: incident.Severities, Statuses: openStatuses,
	})
}

// timelineEntry is one audit event as the detail page shows it.
type timelineEntry struct {
	incident.Event
	// Details are the event's detail fields, sorted by name.
	Details []detailField
}

type detailField struct{ Name, Value string }

// incidentPage is one incident with its timeline.
func (s *Server) incidentPage(c *gin.Context) {
	s.renderIncident(c, http.StatusOK, "", c.Param("id"))
}

func (s *Server) renderIncident(c *gin.Context, status int, message, id string) {
	parsed, err := uuid.Parse(id)
	if err != nil {
		s.pageError(c, http.StatusBadRequest, "Bad request", "That is not an incident id.")
		return
	}
	d, err := s.incidentStore().Get(c.Request.Context(), parsed.String())
	if s.pageLoadFailed(c, "load incident", err, incident.ErrNotFound, "There is no incident "+parsed.String()+".") {
		return
	}
	pages, err := s.incidentStore().PageOutcomes(c.Request.Context(), d.ID)
	if err != nil {
		s.abortInternal(c, "load incident pages", err)
		return
	}
	p := principal(c)
	mine := d.AssignedTo != nil && *d.AssignedTo == p.Subject
	timeline := make([]timelineEntry, 0, len(d.Timeline))
	for _, ev := range d.Timeline {
		timeline = append(timeline, timelineEntry{Event: ev, Details: detailFields(ev.Detail)})
	}
	s.renderPage(c, status, "console_incident.html", pageData{
		Title: "Incident " + d.AlertType, SignedIn: true, Nav: "incident", Message: message, Now: time.Now().UTC(),
		Back:           "/ui/incidents/" + d.ID,
		Incident:       consoleIncident{Incident: d.Incident, Mine: mine, CanClaim: !mine},
		IncidentDetail: d, Timeline: timeline, WebUIURL: s.workflowURL(d.WorkflowID), Pages: pages,
	})
}

// channelName is a page channel as staff name it.
func channelName(channel string) string {
	switch channel {
	case "inapp":
		return "In-app"
	case "sms":
		return "SMS"
	case "slack":
		return "Slack"
	}
	return channel
}

// pageOutcomeColour is the badge colour of a page's outcome: green once
// sent, red when it failed for good, yellow while it waits (a provider that
// is down), grey when skipped (no number, no Slack account).
func pageOutcomeColour(status string) string {
	switch status {
	case "sent":
		return "green"
	case "failed":
		return "red"
	case "pending":
		return "yellow"
	}
	return "grey"
}

// detailFields flattens an event's JSON detail object into sorted fields.
func detailFields(raw json.RawMessage) []detailField {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := make([]detailField, 0, len(m))
	for k, v := range m {
		var val string
		switch v := v.(type) {
		case string:
			val = v
		case nil:
			val = "—"
		default:
			b, _ := json.Marshal(v)
			val = string(b)
		}
		out = append(out, detailField{Name: k, Value: val})
	}
	slices.SortFunc(out, func(a, b detailField) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// consoleAction runs a form's action (acknowledge, start, resolve, claim,
// note, reassign) as the JSON API does, then returns to the form's page;
// a refused action re-renders that page with the reason and a 4xx status.
func (s *Server) consoleAction(c *gin.Context) {
	if !s.checkConsoleForm(c) {
		return
	}
	update, ok := consoleActions[c.Param("action")]
	if !ok {
		s.pageError(c, http.StatusNotFound, "Not found", "There is no such action.")
		return
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		s.pageError(c, http.StatusBadRequest, "Bad request", "That is not an incident id.")
		return
	}
	back := safeNext(c.PostForm("back"))
	body := transitionRequest{
		ResolutionNotes: c.PostForm("resolution_notes"), Note: c.PostForm("note"),
		StaffID: strings.TrimSpace(c.PostForm("staff_id")),
	}
	_, fe, err := s.applyTransition(c.Request.Context(), update, id.String(), principal(c), body)
	switch {
	case fe != nil:
		s.rerender(c, back, http.StatusBadRequest, fmt.Sprintf("Refused: the %s %s.", strings.ReplaceAll(fe.Field, "_", " "), fe.Message))
	case err != nil:
		status, reason, refused := transitionRejection(err)
		if !refused {
			s.Logger.ErrorContext(c.Request.Context(), "console action", "action", update, "err", err, "request_id", requestID(c))
			s.rerender(c, back, http.StatusServiceUnavailable, "Vigil could not reach the incident's workflow just now; try again in a few seconds.")
			return
		}
		s.rerender(c, back, status, "Refused: "+reason+".")
	default:
		c.Redirect(http.StatusSeeOther, back)
	}
}

// rerender shows the page a form came from (back) again, with message.
func (s *Server) rerender(c *gin.Context, back string, status int, message string) {
	u, err := url.Parse(back)
	if err != nil {
		s.renderWork(c, status, message)
		return
	}
	switch {
	case u.Path == "/ui/board":
		s.renderBoard(c, status, message, u.Query())
	case strings.HasPrefix(u.Path, "/ui/incidents/"):
		s.renderIncident(c, status, message, strings.TrimPrefix(u.Path, "/ui/incidents/"))
	default:
		s.renderWork(c, status, message)
	}
}
