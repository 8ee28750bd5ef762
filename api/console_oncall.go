package api

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/reference"
)

// The console's On call page (/ui/oncall): per role, who is on call now and
// on the next shift, and the active and upcoming overrides, in the
// hospital's time zone. Charge nurses and admins add and delete overrides
// with its forms, which call the same store methods (and so the same
// validation) as POST and DELETE /v1/oncall/overrides.

// oncallRoutes registers the On call page and its override forms.
func (s *Server) oncallRoutes(page *gin.RouterGroup) {
	page.GET("/oncall", s.oncallPage)
	page.POST("/oncall/overrides", s.oncallAddOverride)
	page.POST("/oncall/overrides/:id/delete", s.oncallDeleteOverride)
}

const (
	// oncallPath is the On call page.
	oncallPath = "/ui/oncall"
	// oncallInputLayout is a datetime-local input's value; browsers send
	// seconds only when the input's step asks for them.
	oncallInputLayout = "2006-01-02T15:04"
	// The page shows a time of today on the hospital's clock as 15:04, one
	// of another day with its date, and of another year with the year.
	oncallTodayLayout = "15:04"
	oncallDayLayout   = "Mon 2 Jan 15:04"
	oncallYearLayout  = "Mon 2 Jan 2006 15:04"
	// oncallMaxPages bounds the pages of staff and overrides read for the
	// page (reference.MaxLimit each).
	oncallMaxPages = 10
)

// oncallDone are the messages of a successful form, by the ?done= of the
// redirect that follows it.
var oncallDone = map[string]string{
	"added":   "Override added.",
	"deleted": "Override deleted.",
}

// oncallFieldLabels name the override form's fields as the page shows them.
var oncallFieldLabels = map[string]string{
	"role":      "Role",
	"staff_id":  "Staff member",
	"starts_at": "From",
	"ends_at":   "Until",
	"reason":    "Reason",
}

// oncallView is what the On call page shows.
type oncallView struct {
	// TimeZone is the hospital's, in which every time is shown, and Zone
	// its abbreviation now (GMT, BST).
	TimeZone, Zone string
	// Shift is the current shift and ShiftEnds its end; NextShift is the
	// following one.
	Shift, NextShift string
	ShiftEnds        oncallTime
	Roles            []oncallRole
	// OverrideCount is the number of overrides listed.
	OverrideCount int
	// The add form: its choices, the values sent and the error of each
	// field, by form field name.
	RoleNames []string
	Staff     []reference.Staff
	Form      reference.OverrideInput
	FormFrom  string
	FormUntil string
	Errors    map[string]string
	// Done is the message of the form just sent.
	Done string
}

// oncallTime is an instant as the page shows it: RFC 3339 for the
// <time> element and text on the hospital's clock.
type oncallTime struct{ RFC3339, Text string }

// oncallRole is one role's row of the page.
type oncallRole struct {
	Role      string
	Now, Next []oncallPerson
	Overrides []oncallOverride
}

// Label is the role's name with a line break allowed after each
// underscore, for narrow screens.
func (r oncallRole) Label() template.HTML {
	return template.HTML(strings.ReplaceAll(template.HTMLEscapeString(r.Role), "_", "_<wbr>")) //nolint:gosec // escaped first
}

// oncallPerson is someone on call, until when (the end of their override,
// else of the shift).
type oncallPerson struct {
	reference.OnCallPerson
	Until    oncallTime
	Override bool
}

// oncallOverride is an override with the names of its people.
type oncallOverride struct {
	reference.Override
	StaffName, CreatedByName string
	From, Until              oncallTime
	Active                   bool
}

// oncallPage is the On call page.
func (s *Server) oncallPage(c *gin.Context) {
	s.renderOnCall(c, http.StatusOK, "", &oncallView{Done: oncallDone[c.Query("done")]})
}

// renderOnCall renders the page with status, an error message and v's form
// values and errors, filling the rest of v.
func (s *Server) renderOnCall(c *gin.Context, status int, message string, v *oncallView) {
	ctx := c.Request.Context()
	loc := s.HospitalTZ
	now := time.Now()
	shiftEnds := shiftEnd(now, loc)
	v.TimeZone, v.Zone = loc.String(), now.In(loc).Format("MST")
	v.Shift, _ = oncall.ShiftAt(now, loc)
	v.NextShift, _ = oncall.ShiftAt(shiftEnds, loc)
	v.ShiftEnds = hospitalTime(shiftEnds, now, loc)

	current, err := s.referenceStore().OnCall(ctx, loc, "", now)
	if err != nil {
		s.abortInternal(c, "on call now", err)
		return
	}
	next, err := s.referenceStore().OnCall(ctx, loc, "", shiftEnds)
	if err != nil {
		s.abortInternal(c, "on call next shift", err)
		return
	}
	overrides, err := allReferencePages(func(p reference.Page) (reference.List[reference.Override], error) {
		return s.referenceStore().ListOverrides(ctx, reference.OverrideFilter{From: now}, p)
	})
	if err != nil {
		s.abortInternal(c, "list overrides", err)
		return
	}
	v.Staff, err = allReferencePages(func(p reference.Page) (reference.List[reference.Staff], error) {
		return s.referenceStore().ListStaff(ctx, reference.StaffFilter{}, p)
	})
	if err != nil {
		s.abortInternal(c, "list staff", err)
		return
	}
	names := make(map[string]string, len(v.Staff))
	for _, st := range v.Staff {
		names[st.ID] = st.Name
	}

	byRole := map[string]*oncallRole{}
	for _, g := range current.Roles {
		v.RoleNames = append(v.RoleNames, g.Role)
		v.Roles = append(v.Roles, oncallRole{Role: g.Role})
	}
	for i := range v.Roles {
		byRole[v.Roles[i].Role] = &v.Roles[i]
	}
	// until is when each person's active override of each role ends.
	until := map[[2]string]time.Time{}
	for _, o := range overrides {
		active := !o.StartsAt.After(now)
		if active {
			k := [2]string{o.Role, o.StaffID}
			until[k] = later(until[k], o.EndsAt)
		}
		if r := byRole[o.Role]; r != nil {
			v.OverrideCount++
			r.Overrides = append(r.Overrides, oncallOverride{
				Override: o, StaffName: names[o.StaffID], CreatedByName: names[o.CreatedBy],
				From: hospitalTime(o.StartsAt, now, loc), Until: hospitalTime(o.EndsAt, now, loc), Active: active,
			})
		}
	}
	for _, g := range current.Roles {
		for _, p := range g.People {
			end, byOverride := until[[2]string{g.Role, p.ID}]
			if !byOverride {
				end = shiftEnds
			}
			byRole[g.Role].Now = append(byRole[g.Role].Now, oncallPerson{OnCallPerson: p, Until: hospitalTime(end, now, loc), Override: byOverride})
		}
	}
	for _, g := range next.Roles {
		if r := byRole[g.Role]; r != nil {
			for _, p := range g.People {
				r.Next = append(r.Next, oncallPerson{OnCallPerson: p})
			}
		}
	}
	s.renderPage(c, status, "console_oncall.html", pageData{
		Title: "On call", SignedIn: true, Nav: "oncall", Message: message, Back: oncallPath, Now: now.UTC(), OnCall: v,
	})
}

// oncallAddOverride adds an override from the page's form: the
// datetime-local inputs are read on the hospital's clock, the rest is
// checked by the store as for POST /v1/oncall/overrides. Bad input
// re-renders the page with the field named.
func (s *Server) oncallAddOverride(c *gin.Context) {
	if !s.oncallWriteAllowed(c) {
		return
	}
	v := &oncallView{
		Form: reference.OverrideInput{
			Role: strings.TrimSpace(c.PostForm("role")), StaffID: strings.TrimSpace(c.PostForm("staff_id")),
			Reason: strings.TrimSpace(c.PostForm("reason")),
		},
		FormFrom: strings.TrimSpace(c.PostForm("starts_at")), FormUntil: strings.TrimSpace(c.PostForm("ends_at")),
	}
	var err error
	if v.Form.StartsAt, err = s.oncallFormTime("starts_at", v.FormFrom); err == nil {
		v.Form.EndsAt, err = s.oncallFormTime("ends_at", v.FormUntil)
	}
	if err == nil {
		_, err = s.referenceStore().CreateOverride(c.Request.Context(), v.Form, principal(c).Subject)
	}
	if err != nil {
		r, ok := referenceRefusal(err)
		if !ok {
			s.abortInternal(c, "create override", err)
			return
		}
		msg := r.Message
		if label, known := oncallFieldLabels[r.Field]; known {
			msg = fmt.Sprintf("%s (%s) %s.", label, r.Field, r.Message)
			v.Errors = map[string]string{r.Field: msg}
		}
		s.renderOnCall(c, r.Status, "Not added: "+msg, v)
		return
	}
	c.Redirect(http.StatusSeeOther, oncallPath+"?done=added")
}

// oncallDeleteOverride deletes an override from its Delete button.
func (s *Server) oncallDeleteOverride(c *gin.Context) {
	if !s.oncallWriteAllowed(c) {
		return
	}
	id, err := reference.ParseID("id", c.Param("id"))
	if err == nil {
		err = s.referenceStore().DeleteOverride(c.Request.Context(), id)
	}
	if err != nil {
		r, ok := referenceRefusal(err)
		if !ok {
			s.abortInternal(c, "delete override", err)
			return
		}
		msg := "Not deleted: " + strings.TrimSpace(r.Field+" "+r.Message) + "."
		if r.Status == http.StatusNotFound {
			msg = "Not deleted: that override no longer exists."
		}
		s.renderOnCall(c, r.Status, msg, &oncallView{})
		return
	}
	c.Redirect(http.StatusSeeOther, oncallPath+"?done=deleted")
}

// oncallWriteAllowed admits an override form: the console's form checks,
// then the rights of the JSON API's override writes (charge nurses and
// admins), answering 403 otherwise.
func (s *Server) oncallWriteAllowed(c *gin.Context) bool {
	if !s.checkConsoleForm(c) {
		return false
	}
	if !isCharge(principal(c)) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "Only charge nurses and admins change who is on call.")
		return false
	}
	return true
}

// oncallFormTime turns a datetime-local value, read on the hospital's
// clock, into the RFC 3339 time the store takes; empty stays empty for the
// store to call required.
func (s *Server) oncallFormTime(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	t, err := time.ParseInLocation(oncallInputLayout, v, s.HospitalTZ)
	if err != nil {
		t, err = time.ParseInLocation(oncallInputLayout+":05", v, s.HospitalTZ)
	}
	if err != nil {
		return "", &reference.FieldError{Field: field, Message: "must be a date and time such as " + time.Now().In(s.HospitalTZ).Format(oncallInputLayout)}
	}
	return t.Format(time.RFC3339), nil
}

// shiftEnd is when the shift covering t ends: the next of 08:00, 16:00 and
// midnight on the clock of loc.
func shiftEnd(t time.Time, loc *time.Location) time.Time {
	local := t.In(loc)
	hour := 24
	switch h := local.Hour(); {
	case h < 8:
		hour = 8
	case h < 16:
		hour = 16
	}
	return time.Date(local.Year(), local.Month(), local.Day(), hour, 0, 0, 0, loc)
}

// hospitalTime is t as the page shows it on the clock of loc, short when
// it falls on the same day as now.
func hospitalTime(t, now time.Time, loc *time.Location) oncallTime {
	local, today := t.In(loc), now.In(loc)
	layout := oncallYearLayout
	switch {
	case local.Year() == today.Year() && local.YearDay() == today.YearDay():
		layout = oncallTodayLayout
	case local.Year() == today.Year():
		layout = oncallDayLayout
	}
	return oncallTime{RFC3339: local.Format(time.RFC3339), Text: local.Format(layout)}
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// allReferencePages reads every page of a reference list, up to
// oncallMaxPages of reference.MaxLimit items.
func allReferencePages[T any](list func(reference.Page) (reference.List[T], error)) ([]T, error) {
	var out []T
	p := reference.Page{Limit: reference.MaxLimit}
	for range oncallMaxPages {
		page, err := list(p)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextOffset == nil {
			break
		}
		p.Offset = *page.NextOffset
	}
	return out, nil
}
