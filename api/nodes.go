package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/heatmap"
	"github.com/vigil-health/vigil/workflows"
)

// nodeRoutes registers broker node monitoring: the reports (any staff
// token), the settings, contacts, mapping import and scan trigger (admin
// access), and the HTML pages under /ui (see nodePageRoutes).
//
// /v1/nodes/heatmap.png, /v1/nodes/scan and /v1/nodes/settings/import are
// static siblings of /v1/nodes/:id; node ids cannot contain '.', so no node
// is hidden behind the heatmap.
func (s *Server) nodeRoutes(r *gin.Engine) {
	v1 := r.Group("/v1")
	read, admin := s.requireStaff(), s.requireStaff(auth.AccessAdmin)
	v1.GET("/nodes", read, s.listNodes)
	v1.GET("/nodes/heatmap.png", read, s.nodeHeatmap(heatmap.PNG))
	v1.GET("/nodes/heatmap.svg", read, s.nodeHeatmap(heatmap.SVG))
	v1.POST("/nodes/scan", admin, s.triggerNodeScan)
	v1.POST("/nodes/settings/import", admin, s.importNodeSettings)
	v1.GET("/nodes/:id", read, s.getNode)
	v1.GET("/nodes/:id/export", read, s.exportNode)
	v1.GET("/nodes/:id/settings", read, s.getNodeSettings)
	v1.PUT("/nodes/:id/settings", admin, s.putNodeSettings)
	v1.PATCH("/nodes/:id/settings", admin, s.patchNodeSettings)
	v1.DELETE("/nodes/:id/settings", admin, s.deleteNodeSettings)
	v1.GET("/nodes/:id/contacts", read, s.listNodeContacts)
	v1.POST("/nodes/:id/contacts", admin, s.createNodeContact)
	v1.PUT("/nodes/:id/contacts/:contact_id", admin, s.changeNodeContact(true))
	v1.PATCH("/nodes/:id/contacts/:contact_id", admin, s.changeNodeContact(false))
	v1.DELETE("/nodes/:id/contacts/:contact_id", admin, s.deleteNodeContact)
	s.nodePageRoutes(r)
}

// nodeStore is the node monitoring store.
func (s *Server) nodeStore() *node.Store { return s.Stores.Nodes }

// nodeIDParam validates the path's node id, answering 400 when it is not
// one.
func nodeIDParam(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !node.NodeIDPattern.MatchString(id) {
		abortInvalid(c, invalid("id", "must be a node id (1 to 64 letters, digits, '_' or '-')"))
		return "", false
	}
	return id, true
}

// knownNodeParam is nodeIDParam for a node that must be known (listed by
// the broker or with settings), answering 404 otherwise.
func (s *Server) knownNodeParam(c *gin.Context) (string, bool) {
	id, ok := nodeIDParam(c)
	if !ok {
		return "", false
	}
	exists, err := s.nodeStore().Exists(c.Request.Context(), id)
	if err != nil {
		s.abortInternal(c, "look up node", err)
		return "", false
	}
	if !exists {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no node "+id, "")
		return "", false
	}
	return id, true
}

// abortNodeStore answers a node store error: a field error is 400 naming
// the field, a duplicate 409, not found 404, anything else 500.
func (s *Server) abortNodeStore(c *gin.Context, what string, err error) {
	var fe *node.FieldError
	switch {
	case errors.As(err, &fe):
		abortInvalid(c, invalid(fe.Field, fe.Message))
	case errors.Is(err, node.ErrDuplicate):
		abortWithError(c, http.StatusConflict, CodeConflict, "the node already has a contact with this role and e-mail address", "email")
	case errors.Is(err, node.ErrNotFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, what+": not found", "")
	default:
		s.abortInternal(c, what, err)
	}
}

// nodeSettingsRequest is the body of PUT and PATCH
// /v1/nodes/{id}/settings. PUT fills absent fields with the defaults,
// PATCH keeps them; root_ids and format_ids are replaced as a whole.
type nodeSettingsRequest struct {
	CommonName                *string   `json:"common_name"`
	LongName                  *string   `json:"long_name"`
	HospitalInformationSystem *string   `json:"hospital_information_system"`
	ImportInterface           *string   `json:"import_interface"`
	RootIDs                   *node.IDs `json:"root_ids"`
	FormatIDs                 *node.IDs `json:"format_ids"`
	ThresholdHoursFailure     *int      `json:"threshold_hours_failure"`
	NotificationIntervalWeeks *int      `json:"notification_interval_weeks"`
	ConsecutiveImportDays     *int      `json:"consecutive_import_days"`
	Labels                    *[]string `json:"labels"`
	MailLanguage              *string   `json:"mail_language"`
}

// apply copies the request's fields onto st.
func (r *nodeSettingsRequest) apply(st *node.Settings) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&st.CommonName, r.CommonName)
	set(&st.LongName, r.LongName)
	set(&st.HospitalInformationSystem, r.HospitalInformationSystem)
	set(&st.ImportInterface, r.ImportInterface)
	set(&st.MailLanguage, r.MailLanguage)
	if r.RootIDs != nil {
		st.RootIDs = *r.RootIDs
	}
	if r.FormatIDs != nil {
		st.FormatIDs = *r.FormatIDs
	}
	for _, n := range []struct {
		dst *int
		v   *int
	}{
		{&st.ThresholdHoursFailure, r.ThresholdHoursFailure},
		{&st.NotificationIntervalWeeks, r.NotificationIntervalWeeks},
		{&st.ConsecutiveImportDays, r.ConsecutiveImportDays},
	} {
		if n.v != nil {
			*n.dst = *n.v
		}
	}
	if r.Labels != nil {
		st.Labels = append(st.Labels[:0:0], *r.Labels...)
	}
}

// nodeRequest reads the path's node id and the JSON body into req,
// answering 400 when either is bad.
func nodeRequest(c *gin.Context, req any) (string, bool) {
	id, ok := nodeIDParam(c)
	return id, ok && decodeJSON(c, req, false)
}

// answerNodeSettings answers a read or change of a node's settings: 404
// with noSettings when the node has none, a store error as
// abortNodeStore does, else 200 with st.
func (s *Server) answerNodeSettings(c *gin.Context, st node.Settings, err error, noSettings, what string) {
	switch {
	case errors.Is(err, node.ErrNotFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, noSettings, "")
	case err != nil:
		s.abortNodeStore(c, what, err)
	default:
		c.JSON(http.StatusOK, st)
	}
}

func (s *Server) getNodeSettings(c *gin.Context) {
	id, ok := nodeIDParam(c)
	if !ok {
		return
	}
	st, err := s.nodeStore().GetSettings(c.Request.Context(), id)
	s.answerNodeSettings(c, st, err, "node "+id+" has no settings; the defaults apply", "get node settings")
}

// putNodeSettings stores a node's settings whole: 201 when it had none,
// 200 when they are replaced. A node the broker has not listed yet may get
// settings (as the mapping import does).
func (s *Server) putNodeSettings(c *gin.Context) {
	var req nodeSettingsRequest
	id, ok := nodeRequest(c, &req)
	if !ok {
		return
	}
	if req.CommonName == nil {
		abortInvalid(c, invalid("common_name", "is required"))
		return
	}
	st := node.Defaults(id)
	req.apply(&st)
	out, created, err := s.nodeStore().PutSettings(c.Request.Context(), st)
	if err != nil {
		s.abortNodeStore(c, "store node settings", err)
		return
	}
	answerStored(c, created, "/v1/nodes/"+id+"/settings", out)
}

func (s *Server) patchNodeSettings(c *gin.Context) {
	var req nodeSettingsRequest
	id, ok := nodeRequest(c, &req)
	if !ok {
		return
	}
	out, err := s.nodeStore().UpdateSettings(c.Request.Context(), id, func(st *node.Settings) error {
		req.apply(st)
		return nil
	})
	s.answerNodeSettings(c, out, err, "node "+id+" has no settings; PUT them first", "update node settings")
}

func (s *Server) deleteNodeSettings(c *gin.Context) {
	id, ok := nodeIDParam(c)
	if !ok {
		return
	}
	if err := s.nodeStore().DeleteSettings(c.Request.Context(), id); err != nil {
		s.abortNodeStore(c, "node "+id+" settings", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// NodeImportResult answers POST /v1/nodes/settings/import.
type NodeImportResult struct {
	// Created counts nodes that had no settings, Updated those whose
	// settings were replaced.
	Created int `json:"created"`
	Updated int `json:"updated"`
}

// importNodeSettings stores the seed's mapping JSON in one transaction: a
// bad entry stores nothing and is answered 400 naming "<node id>.<KEY>".
func (s *Server) importNodeSettings(c *gin.Context) {
	raw, ok := readJSONBody(c, maxBodyBytes)
	if !ok {
		return
	}
	nodes, err := node.ParseMapping(raw)
	if err != nil {
		var fe *node.FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, fe.Message, "")
			return
		}
		s.abortNodeStore(c, "parse mapping", err)
		return
	}
	created, updated, err := s.nodeStore().ImportSettings(c.Request.Context(), nodes)
	if err != nil {
		s.abortNodeStore(c, "import node settings", err)
		return
	}
	c.JSON(http.StatusOK, NodeImportResult{Created: created, Updated: updated})
}

// nodeContactRequest is the body of the contact endpoints; POST and PUT
// need role and email, PATCH changes only the fields given.
type nodeContactRequest struct {
	Role         *string `json:"role"`
	Title        *string `json:"title"`
	FirstName    *string `json:"first_name"`
	LastName     *string `json:"last_name"`
	Email        *string `json:"email"`
	MainContact  *bool   `json:"main_contact"`
	Unsubscribed *bool   `json:"unsubscribed"`
}

func (r *nodeContactRequest) required() *fieldError {
	if r.Role == nil {
		return invalid("role", "is required: ED or IT")
	}
	if r.Email == nil {
		return invalid("email", "is required")
	}
	return nil
}

func (r *nodeContactRequest) apply(ct *node.Contact) {
	for _, f := range []struct {
		dst *string
		v   *string
	}{{&ct.Role, r.Role}, {&ct.Title, r.Title}, {&ct.FirstName, r.FirstName}, {&ct.LastName, r.LastName}, {&ct.Email, r.Email}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	if r.MainContact != nil {
		ct.MainContact = *r.MainContact
	}
	if r.Unsubscribed != nil {
		ct.Unsubscribed = *r.Unsubscribed
	}
}

// NodeContactList answers GET /v1/nodes/{id}/contacts.
type NodeContactList struct {
	Items []node.Contact `json:"items"`
}

// listNodeContacts lists a node's contacts. E-mail addresses are the
// sites' operational contacts, visible to all staff.
func (s *Server) listNodeContacts(c *gin.Context) {
	id, ok := s.knownNodeParam(c)
	if !ok {
		return
	}
	items, err := s.nodeStore().Contacts(c.Request.Context(), id)
	s.answerOK(c, "list node contacts", NodeContactList{Items: items}, err)
}

func (s *Server) createNodeContact(c *gin.Context) {
	id, ok := s.knownNodeParam(c)
	if !ok {
		return
	}
	req, ok := decodeChecked(c, false, (*nodeContactRequest).required)
	if !ok {
		return
	}
	ct := node.Contact{NodeID: id}
	req.apply(&ct)
	out, err := s.nodeStore().CreateContact(c.Request.Context(), ct)
	if err != nil {
		s.abortNodeStore(c, "create node contact", err)
		return
	}
	answerCreated(c, "/v1/nodes/"+id+"/contacts/"+strconv.FormatInt(out.ID, 10), out)
}

// contactParams validates the path's node and contact ids; what names the
// contact in errors.
func contactParams(c *gin.Context) (id string, cid int64, what string, ok bool) {
	if id, ok = nodeIDParam(c); !ok {
		return "", 0, "", false
	}
	cid, err := strconv.ParseInt(c.Param("contact_id"), 10, 64)
	if err != nil || cid < 1 {
		abortInvalid(c, invalid("contact_id", "must be a positive whole number"))
		return "", 0, "", false
	}
	return id, cid, "node " + id + " contact " + strconv.FormatInt(cid, 10), true
}

// changeNodeContact is PUT (whole, replace) or PATCH (merge) of a contact.
func (s *Server) changeNodeContact(replace bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, cid, what, ok := contactParams(c)
		if !ok {
			return
		}
		req, ok := decodeChecked(c, false, func(r *nodeContactRequest) *fieldError {
			if replace {
				return r.required()
			}
			return nil
		})
		if !ok {
			return
		}
		out, err := s.nodeStore().UpdateContact(c.Request.Context(), id, cid, func(ct *node.Contact) error {
			if replace {
				*ct = node.Contact{CreatedAt: ct.CreatedAt}
			}
			req.apply(ct)
			return nil
		})
		if err != nil {
			s.abortNodeStore(c, what, err)
			return
		}
		c.JSON(http.StatusOK, out)
	}
}

func (s *Server) deleteNodeContact(c *gin.Context) {
	id, cid, what, ok := contactParams(c)
	if !ok {
		return
	}
	if err := s.nodeStore().DeleteContact(c.Request.Context(), id, cid); err != nil {
		s.abortNodeStore(c, what, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// triggerNodeScan runs the fleet scan schedule now (outside its cadence);
// the scan itself runs asynchronously: 202.
func (s *Server) triggerNodeScan(c *gin.Context) {
	err := s.triggerFleetScan(c.Request.Context())
	if err == nil {
		c.JSON(http.StatusAccepted, gin.H{"schedule_id": workflows.FleetScanScheduleID, "triggered": true})
		return
	}
	if status, code, reason, ok := fleetScanRefusal(err); ok {
		abortWithError(c, status, code, reason, "")
		return
	}
	s.abortTemporal(c, "trigger fleet scan", err)
}

// triggerFleetScan triggers the fleet scan schedule (the JSON API's and
// the node page's rescan).
func (s *Server) triggerFleetScan(ctx context.Context) error {
	return s.Temporal.ScheduleClient().GetHandle(ctx, workflows.FleetScanScheduleID).Trigger(ctx, client.ScheduleTriggerOptions{})
}

// fleetScanRefusal is the answer to a failed trigger that is not the
// workflow service's fault: no schedule (no broker configured) or no
// answer in time.
func fleetScanRefusal(err error) (status int, code, reason string, ok bool) {
	switch {
	case workflowGone(err):
		return http.StatusNotFound, CodeNotFound,
			"the fleet scan schedule " + workflows.FleetScanScheduleID + " does not exist: no broker is configured", true
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout, "the workflow service did not answer in time", true
	}
	return 0, "", "", false
}
