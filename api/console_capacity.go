package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/workflows"
)

// The console's Capacity page (/ui/capacity): the watched services on a
// map coloured by status (Leaflet, served by Vigil; map tiles from
// VIGIL_MAP_TILE_URL, loaded by the browser) and in a table that works
// without the script or the tiles, the services not at HIGH, the recent
// changes, and, for charge nurses and admins, watch management (create,
// pause, resume, change interval, delete) through forms that make the same
// changes as the JSON API. The script (/ui/static/capacity.js) polls
// /ui/capacity/statuses to recolour the markers and the table.

//go:embed static/capacity.js static/capacity.css static/leaflet
var capacityStatic embed.FS

// staticAsset is an embedded file, with its gzip encoding when that pays.
type staticAsset struct {
	body, gz    []byte
	contentType string
}

// capacityAssets are the page's files by their path under /ui/static/:
// capacity.js, capacity.css and leaflet/... (Leaflet 1.9.4's script, style sheet, images
// and licence).
var capacityAssets = func() map[string]staticAsset {
	out := map[string]staticAsset{}
	err := fs.WalkDir(capacityStatic, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := capacityStatic.ReadFile(p)
		if err != nil {
			return err
		}
		a := staticAsset{body: body, contentType: mime.TypeByExtension(path.Ext(p))}
		switch path.Ext(p) {
		case ".js":
			a.contentType = "text/javascript; charset=utf-8"
		case ".css":
			a.contentType = "text/css; charset=utf-8"
		case "":
			a.contentType = "text/plain; charset=utf-8"
		}
		if strings.HasPrefix(a.contentType, "text/") {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			a.gz = buf.Bytes()
		}
		out[strings.TrimPrefix(p, "static/")] = a
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}()

// serveAsset answers with the asset, gzipped when the browser accepts it.
func serveAsset(c *gin.Context, a staticAsset, cacheControl string) {
	c.Header("Cache-Control", cacheControl)
	c.Header("Vary", "Accept-Encoding")
	if a.gz != nil && strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
		c.Header("Content-Encoding", "gzip")
		c.Data(http.StatusOK, a.contentType, a.gz)
		return
	}
	c.Data(http.StatusOK, a.contentType, a.body)
}

// Capacity page settings.
const (
	// capacityChangesShown is how many recent changes the page lists.
	capacityChangesShown = 20
	// capacityWatchesShown bounds the managed watches listed.
	capacityWatchesShown = 500
	// leafletVersion versions the Leaflet URLs, which are cached for a year.
	leafletVersion = "1.9.4"
)

// capacityRoutes registers the Capacity page, its status feed, its forms
// and its files.
func (s *Server) capacityRoutes(ui, page *gin.RouterGroup) {
	for _, name := range []string{"capacity.js", "capacity.css"} {
		ui.GET("/static/"+name, func(c *gin.Context) { serveAsset(c, capacityAssets[name], "no-cache") })
	}
	ui.GET("/static/leaflet/*file", func(c *gin.Context) {
		a, ok := capacityAssets["leaflet"+c.Param("file")]
		if !ok {
			c.Status(http.StatusNotFound)
			return
		}
		serveAsset(c, a, "public, max-age=31536000, immutable")
	})
	page.GET("/capacity", s.capacityPage)
	page.GET("/capacity/statuses", s.capacityStatuses)
	page.POST("/capacity/watches", s.capacityCreate)
	page.POST("/capacity/watches/:id/:action", s.capacityWatchAction)
}

// mapService is one watched service as the map and the table show it.
type mapService struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Region   string   `json:"region"`
	Postcode string   `json:"postcode"`
	Capacity string   `json:"capacity"`
	Status   string   `json:"status"`
	Colour   string   `json:"colour"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	// LastSeen is when a poll last saw the service (RFC 3339).
	LastSeen string `json:"last_seen"`
}

// capacityStatus is the label and colour class of a capacity; "" (reset
// or never set) is RESET in grey.
func capacityStatus(capacity string) (label, colour string) {
	switch capacity {
	case directory.CapacityHigh:
		return "HIGH", "green"
	case directory.CapacityLow:
		return "LOW", "yellow"
	case directory.CapacityNone:
		return "NONE", "red"
	}
	return capacityParamReset, "grey"
}

// capacityView is the Capacity page's data.
type capacityView struct {
	Services []mapService
	NotHigh  []watch.Status
	Changes  []watch.RecordedChange
	Watches  []WatchView
	// CanManage: the viewer may change watches.
	CanManage bool
	// TileURL is the map tile template ("" for no tiles).
	TileURL string
	// Form holds the create form's values after a refusal; Error is the
	// refusal, in the form it concerns (Watch names the watch's row, ""
	// the create form).
	Form  url.Values
	Error *capacityFormError
	// Types are the service types a search may name, by id.
	Types []serviceType
	// LeafletVersion versions the Leaflet URLs.
	LeafletVersion string
}

type serviceType struct{ ID, Name string }

// capacityFormError is a refused form: the field it names (may be "") and
// why, for the watch Watch ("" for the create form).
type capacityFormError struct {
	Watch, Field, Message string
}

// Value is a create-form field's value after a refusal.
func (v capacityView) Value(field string) string { return v.Form.Get(field) }

// HasType reports whether the refused create form had the service type.
func (v capacityView) HasType(id string) bool { return slices.Contains(v.Form["service_types"], id) }

// mapServices lists every watched service for the map and the table.
func (s *Server) mapServices(ctx context.Context) ([]mapService, error) {
	coverage, err := s.watchStore().Coverage(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mapService, 0, len(coverage))
	for _, cs := range coverage {
		label, colour := capacityStatus(cs.Capacity)
		out = append(out, mapService{
			ID: cs.ServiceID, Name: cs.Name, Type: cs.Type, Region: cs.Region, Postcode: cs.Postcode,
			Capacity: cs.Capacity, Status: label, Colour: colour, Lat: cs.Lat, Lon: cs.Lon,
			LastSeen: cs.LastSeenAt.UTC().Format(time.RFC3339),
		})
	}
	return out, nil
}

// capacityCSP is the page's policy: the console script policy plus
// Leaflet's style sheet, its images (some data: URLs) and the tile
// server's origin.
func (s *Server) capacityCSP() string {
	img := "img-src 'self' data:"
	if origin := tileOrigin(s.MapTileURL); origin != "" {
		img += " " + origin
	}
	return "default-src 'none'; " + img + "; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

// tileOrigin is the origin of a tile URL template for a
// Content-Security-Policy ({s} in the host becomes a wildcard); "" when
// there is none.
func tileOrigin(template string) string {
	if template == "" {
		return ""
	}
	u, err := url.Parse(strings.NewReplacer("{s}", "s-sub", "{z}", "0", "{x}", "0", "{y}", "0", "{r}", "").Replace(template))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	host := u.Host
	if i := strings.Index(host, "s-sub"); i >= 0 {
		// A partial wildcard is not a CSP source: the subdomain label
		// becomes "*." (e.g. https://*.tile.example.org).
		rest := host[i+len("s-sub"):]
		dot := strings.Index(rest, ".")
		if dot < 0 {
			return ""
		}
		host = "*" + rest[dot:]
	}
	return u.Scheme + "://" + host
}

// capacityPage is the Capacity page.
func (s *Server) capacityPage(c *gin.Context) {
	s.renderCapacity(c, http.StatusOK, nil, nil)
}

func (s *Server) renderCapacity(c *gin.Context, status int, form url.Values, fe *capacityFormError) {
	ctx := c.Request.Context()
	services, err := s.mapServices(ctx)
	if err != nil {
		s.abortInternal(c, "capacity map", err)
		return
	}
	notHigh, err := s.watchStore().Statuses(ctx, defaultStatusCapacities)
	if err != nil {
		s.abortInternal(c, "capacity not at high", err)
		return
	}
	changes, err := s.watchStore().Changes(ctx, watch.ChangeFilter{Limit: capacityChangesShown})
	if err != nil {
		s.abortInternal(c, "capacity changes", err)
		return
	}
	watches, err := s.watchStore().List(ctx, capacityWatchesShown, 0)
	if err != nil {
		s.abortInternal(c, "capacity watches", err)
		return
	}
	v := &capacityView{
		Services: services, NotHigh: notHigh, Changes: changes.Items,
		CanManage: hasAccess(principal(c), watchManageAccess), TileURL: s.MapTileURL,
		Form: form, Error: fe, LeafletVersion: leafletVersion,
	}
	for _, w := range watches {
		v.Watches = append(v.Watches, s.view(w))
	}
	for id, name := range directory.ServiceTypes {
		v.Types = append(v.Types, serviceType{ID: id, Name: name})
	}
	slices.SortFunc(v.Types, func(a, b serviceType) int { return strings.Compare(a.Name, b.Name) })
	message := ""
	if fe != nil {
		message = "Refused: " + fe.Message
	}
	c.Header("Content-Security-Policy", s.capacityCSP())
	s.renderPage(c, status, "console_capacity.html", pageData{
		Title: "Capacity", SignedIn: true, Nav: "capacity", Message: message, Back: "/ui/capacity",
		Now: time.Now().UTC(), Capacity: v,
	})
}

// capacityStatuses is the script's feed: every watched service's status.
func (s *Server) capacityStatuses(c *gin.Context) {
	services, err := s.mapServices(c.Request.Context())
	if err != nil {
		s.abortInternal(c, "capacity statuses", err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"services": services, "generated_at": time.Now().UTC().Format(time.RFC3339)})
}

// capacityForm checks a watch form's media type, CSRF token and the
// viewer's right to manage watches, answering the request itself when one
// fails.
func (s *Server) capacityForm(c *gin.Context) bool {
	if !s.checkConsoleForm(c) {
		return false
	}
	if !hasAccess(principal(c), watchManageAccess) {
		s.pageError(c, http.StatusForbidden, "Forbidden", "Managing watches is for charge nurses and admins.")
		return false
	}
	return true
}

// formInt reads an optional whole-number field of the form.
func formInt(c *gin.Context, field string) (*int, *fieldError) {
	v := strings.TrimSpace(c.PostForm(field))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, invalid(field, "must be a whole number")
	}
	return &n, nil
}

// formString reads an optional text field of the form (nil when empty).
func formString(c *gin.Context, field string) *string {
	v := strings.TrimSpace(c.PostForm(field))
	if v == "" {
		return nil
	}
	return &v
}

// createRequest is the create form as the JSON API's request.
func createRequest(c *gin.Context) (watchRequest, *fieldError) {
	kind := strings.TrimSpace(c.PostForm("kind"))
	req := watchRequest{
		Kind: &kind, Description: formString(c, "description"), SlackChannel: formString(c, "slack_channel"),
	}
	if kind == workflows.WatchKindService {
		req.ServiceID = formString(c, "service_id")
		if req.ServiceID == nil {
			return req, invalid("service_id", "is required for a service watch")
		}
	}
	var fe *fieldError
	if req.IntervalSeconds, fe = formInt(c, "interval_seconds"); fe != nil {
		return req, fe
	}
	if req.RecoveryPolls, fe = formInt(c, "recovery_polls"); fe != nil {
		return req, fe
	}
	if sms := strings.FieldsFunc(c.PostForm("sms_numbers"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }); len(sms) > 0 {
		req.SMSNumbers = &sms
	}
	if kind == workflows.WatchKindSearch {
		sr := &searchRequest{Postcode: c.PostForm("postcode"), ServiceTypes: c.PostFormArray("service_types"), GP: strings.TrimSpace(c.PostForm("gp"))}
		for _, f := range []struct {
			name string
			dst  *int
		}{{"distance_miles", &sr.DistanceMiles}, {"results_limit", &sr.ResultsLimit}} {
			n, fe := formInt(c, f.name)
			if fe != nil {
				fe.Field = "search." + fe.Field
				return req, fe
			}
			if n != nil {
				*f.dst = *n
			}
		}
		req.Search = sr
	}
	return req, nil
}

// capacityCreate is the create form: it makes the watch as
// POST /v1/watches does.
func (s *Server) capacityCreate(c *gin.Context) {
	if !s.capacityForm(c) {
		return
	}
	refuse := func(status int, fe *fieldError) {
		s.renderCapacity(c, status, c.Request.PostForm, &capacityFormError{Field: fe.Field, Message: describeFieldError(fe)})
	}
	req, fe := createRequest(c)
	if fe != nil {
		refuse(http.StatusBadRequest, fe)
		return
	}
	cfg, fe := req.config(workflows.WatchConfig{})
	if fe != nil {
		refuse(http.StatusBadRequest, fe)
		return
	}
	if _, err := s.startWatch(c.Request.Context(), principal(c).Subject, cfg); err != nil {
		status, message := s.watchChangeRefusal(c, "create watch", err)
		s.renderCapacity(c, status, c.Request.PostForm, &capacityFormError{Message: message})
		return
	}
	c.Redirect(http.StatusSeeOther, "/ui/capacity#watches")
}

// describeFieldError words a field error for a page: "the interval
// seconds must be 60 to 86400."
func describeFieldError(fe *fieldError) string {
	return fmt.Sprintf("the %s %s.", strings.NewReplacer("_", " ", ".", " ").Replace(fe.Field), fe.Message)
}

// watchChangeRefusal is the status and message of a watch change that
// failed (a refusal by the workflow, or Vigil could not make it).
func (s *Server) watchChangeRefusal(c *gin.Context, what string, err error) (int, string) {
	var wf *watchWorkflowError
	if errors.As(err, &wf) && wf.update {
		if workflowGone(err) {
			return http.StatusConflict, "the watch is not running."
		}
		if status, reason, ok := transitionRejection(wf.err); ok {
			return status, reason + "."
		}
	}
	s.Logger.ErrorContext(c.Request.Context(), "console: "+what, "err", err, "request_id", requestID(c))
	return http.StatusServiceUnavailable, "Vigil could not make the change just now; try again in a few seconds."
}

// capacityWatchAction runs a watch row's form: pause, resume, interval
// (interval_seconds) or delete (confirm=yes), as the JSON API does.
func (s *Server) capacityWatchAction(c *gin.Context) {
	if !s.capacityForm(c) {
		return
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		s.pageError(c, http.StatusBadRequest, "Bad request", "That is not a watch id.")
		return
	}
	ctx := c.Request.Context()
	w, err := s.watchStore().Get(ctx, id.String())
	if s.pageLoadFailed(c, "load watch", err, watch.ErrNotFound, "There is no watch "+id.String()+".") {
		return
	}
	refuse := func(status int, field, message string) {
		s.renderCapacity(c, status, nil, &capacityFormError{Watch: w.ID, Field: field, Message: message})
	}
	switch c.Param("action") {
	case "pause":
		err = s.setWatchState(ctx, w.ID, workflows.WatchUpdatePause, workflows.WatchPaused, actor(c))
	case "resume":
		err = s.setWatchState(ctx, w.ID, workflows.WatchUpdateResume, workflows.WatchActive, actor(c))
	case "interval":
		n, fe := formInt(c, "interval_seconds")
		if fe == nil && n == nil {
			fe = invalid("interval_seconds", "is required")
		}
		if fe != nil {
			refuse(http.StatusBadRequest, fe.Field, describeFieldError(fe))
			return
		}
		if fe, err = s.reconfigureWatch(ctx, s.view(w), watchRequest{IntervalSeconds: n}); fe != nil {
			refuse(http.StatusBadRequest, fe.Field, describeFieldError(fe))
			return
		}
	case "delete":
		if c.PostForm("confirm") != "yes" {
			refuse(http.StatusBadRequest, "confirm", "the confirm box must be ticked to delete the watch.")
			return
		}
		err = s.removeWatch(ctx, w.ID)
	default:
		s.pageError(c, http.StatusNotFound, "Not found", "There is no such action.")
		return
	}
	if err != nil {
		status, message := s.watchChangeRefusal(c, c.Param("action")+" watch", err)
		refuse(status, "", message)
		return
	}
	c.Redirect(http.StatusSeeOther, "/ui/capacity#watches")
}
