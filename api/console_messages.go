package api

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/message"
)

// The console's Messages page for clinicians. The console signs in staff
// accounts, but messages are between patients, locations and external
// clinicians (the clinicians table), who otherwise log in through a ward
// device. A staff account acts as a clinician here when a clinician record
// has the staff id as its clinician id, and only while that record may log
// in (login active, contract running, an allowed group: clinicianRefusal,
// the check every clinician token passes). The console has no device and
// so no ward: the clinician acts for the wards of its record only when it
// is in an all-wards group (as its device token would), else for itself
// alone. Every read and write then goes through the message store with
// those clinician claims, i.e. the JSON API's own policy (package
// message): the page shows exactly what GET /v1/... shows that clinician.
//
// /ui/messages lists the conversations (by the other party) and the active
// callbacks of their patients; /ui/messages/:party (party "type:id", such
// as patient:P-1) is one conversation with its send form (POST, CSRF
// checked, then a redirect back); /ui/messages-stream/:id is the message
// stream of receiver :id (streamMessages) with the console cookie, which
// messages.js follows to show new messages without a reload.

//go:embed static/messages.js
var messagesStatic embed.FS

// messagesJS is the Messages page's script.
var messagesJS = func() []byte {
	b, err := messagesStatic.ReadFile("static/messages.js")
	if err != nil {
		panic(err)
	}
	return b
}()

// Bounds of the Messages page.
const (
	// consoleThreadLimit is how many messages a conversation shows.
	consoleThreadLimit = 200
	// consoleInboxLimit is how many of the newest messages of each of the
	// clinician's parties (itself, its wards) the conversation list reads.
	consoleInboxLimit = 200
	// consoleMaxStreams bounds the streams a page follows: browsers open
	// six HTTP/1.1 connections per site, for every tab of it.
	consoleMaxStreams = 3
)

// consoleMessageRoutes registers the Messages page.
func (s *Server) consoleMessageRoutes(ui, page *gin.RouterGroup) {
	ui.GET("/static/messages.js", serveScript(messagesJS))
	page.GET("/messages", s.messagesPage)
	page.GET("/messages/:party", s.conversationPage)
	page.POST("/messages/:party", s.consoleSendMessage)
	page.GET("/messages-stream/:id", s.asConsoleClinician, s.streamMessages)
}

// consoleClinician returns the clinician claims a signed-in staff member
// acts with on the Messages page, or nil and why not (a sentence for the
// page) when they may not use messages.
func (s *Server) consoleClinician(ctx context.Context, staff *auth.Claims) (*auth.Claims, string, error) {
	if staff == nil || staff.SubjectType != auth.SubjectStaff {
		return nil, "Messages are for clinicians.", nil
	}
	row, err := s.cachedClinician(ctx, staff.Subject)
	if err != nil {
		return nil, "", err
	}
	if row == nil {
		return nil, "Messages are for clinicians: your staff account " + staff.Subject +
			" is not one. An admin links it by registering a clinician with the id " + staff.Subject + ".", nil
	}
	var locations []string
	if inGroup(row.Groups, s.act.allWardsGroups) {
		locations = slices.Clone(row.LocationIDs)
	}
	expires := staff.ExpiresAt
	if expires.IsZero() {
		expires = time.Now().Add(s.AccessTTL)
	}
	claims := &auth.Claims{Subject: row.ClinicianID, SubjectType: auth.SubjectClinician, TokenType: auth.TokenAccess,
		Scopes: []string{ScopeReadMessage, ScopeWriteMessage}, LocationIDs: locations, ExpiresAt: expires}
	refused, err := s.clinicianRefusal(ctx, claims)
	if err != nil {
		return nil, "", err
	}
	if refused != nil {
		return nil, "Your clinician login is refused (" + strings.TrimPrefix(refused.audit, "token refused: ") + ").", nil
	}
	return claims, "", nil
}

// consoleMayMessage reports whether the signed-in staff member may use the
// Messages page (for the navigation link).
func (s *Server) consoleMayMessage(c *gin.Context) bool {
	claims, _, err := s.consoleClinician(c.Request.Context(), principal(c))
	if err != nil {
		s.Logger.WarnContext(c.Request.Context(), "check messages link", "err", err, "request_id", requestID(c))
	}
	return claims != nil
}

// clinicianOrRefuse returns the caller's clinician claims, or answers the
// page with the refusal and returns nil.
func (s *Server) clinicianOrRefuse(c *gin.Context) *auth.Claims {
	claims, reason, err := s.consoleClinician(c.Request.Context(), principal(c))
	switch {
	case err != nil:
		s.pageStoreError(c, err)
	case claims == nil:
		s.pageError(c, http.StatusForbidden, "Forbidden", reason)
	}
	return claims
}

// asConsoleClinician lets the message stream run with the caller's
// clinician claims (see consoleClinician), which the stream rechecks as it
// goes. The staff session is rechecked too: the stream ends when the
// session ends or when the console's access token would expire (the
// browser then reconnects through the session check).
func (s *Server) asConsoleClinician(c *gin.Context) {
	staff := principal(c)
	claims, reason, err := s.consoleClinician(c.Request.Context(), staff)
	switch {
	case err != nil:
		s.abortInternal(c, "check clinician", err)
		return
	case claims == nil:
		abortWithError(c, http.StatusForbidden, CodeForbidden, reason, "")
		return
	}
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	if staff.SessionID != "" {
		go func() {
			tick := time.NewTicker(streamRecheck)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if r, err := s.rightsChecker().Check(ctx, staff.SessionID, staff.SubjectType, staff.Subject); err == nil && !r.Live {
						cancel()
						return
					}
				}
			}
		}()
	}
	c.Request = c.Request.WithContext(ctx)
	c.Set(principalKey, claims)
	c.Next()
}

// partyRef is one side of a message.
type partyRef struct{ Type, ID string }

// Key is the party as the page's URLs name it: "type:id".
func (p partyRef) Key() string { return p.Type + ":" + p.ID }

// parseParty reads a "type:id" party.
func parseParty(v string) (partyRef, bool) {
	typ, id, ok := strings.Cut(v, ":")
	if !ok || !slices.Contains(message.PartyTypes, typ) || !message.ValidPartyID(id) {
		return partyRef{}, false
	}
	return partyRef{Type: typ, ID: id}, true
}

// conversation is one line of the conversation list.
type conversation struct {
	Party partyRef
	// Last is the newest message; Count how many of the messages read
	// belong to the conversation.
	Last  message.Message
	Count int
}

// messagesView is the Messages page's data.
type messagesView struct {
	// Me is the clinician; SendAs the parties it sends as (itself, then
	// its wards).
	Me     string
	SendAs []partyRef
	// Conversations and the active callbacks of their patients (list).
	Conversations []conversation
	Callbacks     []message.Message
	// Open is the "open a conversation" form: values and error.
	OpenType, OpenID, OpenError string
	// Party, Thread (oldest first) and More (older ones not shown): one
	// conversation.
	Party  *partyRef
	Thread []message.Message
	More   bool
	// Types are the message types of the send form; Form its values and
	// Errors its refusals by field (sender, message_type, content).
	Types  []message.TypeRef
	Form   sendForm
	Errors map[string]string
	// Streams are the receivers the script follows.
	Streams []string
}

// sendForm is the send form's values.
type sendForm struct {
	Sender  string
	Type    int
	Content string
}

// messageTypes are the valid message types, in value order.
func messageTypes() []message.TypeRef {
	var out []message.TypeRef
	for t := message.Type(0); t <= message.TypeClearAlerts; t++ {
		if t.Valid() {
			out = append(out, message.TypeRef{Value: t, Name: t.Name()})
		}
	}
	return out
}

// newMessagesView is the view's common part for the clinician.
func newMessagesView(claims *auth.Claims) *messagesView {
	v := &messagesView{Me: claims.Subject, SendAs: []partyRef{{Type: message.PartyClinician, ID: claims.Subject}}, Types: messageTypes()}
	for _, l := range claims.LocationIDs {
		v.SendAs = append(v.SendAs, partyRef{Type: message.PartyLocation, ID: l})
	}
	return v
}

// mine reports whether the clinician is the party: itself or its wards.
func (v *messagesView) mine(p partyRef) bool {
	return slices.Contains(v.SendAs, p)
}

// streams are the receivers to follow: the listed parties first, then the
// clinician's own, at most consoleMaxStreams.
func streams(first []partyRef, v *messagesView) []string {
	var out []string
	for _, p := range append(slices.Clone(first), v.SendAs...) {
		if len(out) == consoleMaxStreams {
			break
		}
		if !slices.Contains(out, p.ID) {
			out = append(out, p.ID)
		}
	}
	return out
}

// renderMessages renders the Messages page with the script's policy.
func (s *Server) renderMessages(c *gin.Context, status int, title, msg string, v *messagesView) {
	c.Header("Content-Security-Policy", consoleScriptCSP)
	s.renderPage(c, status, "console_messages.html", pageData{Title: title, SignedIn: true, Nav: "messages", Message: msg,
		Now: time.Now().UTC(), Messages: v})
}

// messagesPage lists the clinician's conversations and the active
// callbacks of their patients. ?type=&id= (the open form) goes to one
// conversation.
func (s *Server) messagesPage(c *gin.Context) {
	claims := s.clinicianOrRefuse(c)
	if claims == nil {
		return
	}
	v := newMessagesView(claims)
	status := http.StatusOK
	if id, ok := c.GetQuery("id"); ok {
		v.OpenType, v.OpenID = c.Query("type"), strings.TrimSpace(id)
		switch p := (partyRef{Type: v.OpenType, ID: v.OpenID}); {
		case !slices.Contains(message.PartyTypes, p.Type):
			v.OpenError = "The party type must be one of " + strings.Join(message.PartyTypes, ", ") + "."
		case !message.ValidPartyID(p.ID):
			v.OpenError = "The party id must be 1 to 128 letters, digits, '.', '_', ':', '@' or '-'."
		default:
			c.Redirect(http.StatusSeeOther, "/ui/messages/"+url.PathEscape(p.Key()))
			return
		}
		status = http.StatusBadRequest
	}
	ctx := c.Request.Context()
	seen := map[string]bool{}
	byParty := map[partyRef]*conversation{}
	for _, me := range v.SendAs {
		page, err := s.messageStore().List(ctx, claims, message.ListQuery{PartyID: me.ID, PartyType: me.Type, Limit: consoleInboxLimit})
		if err != nil {
			s.abortInternal(c, "list messages", err)
			return
		}
		for _, m := range page.Items {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			other := partyRef{Type: m.ReceiverType, ID: m.ReceiverID}
			if !v.mine(partyRef{Type: m.SenderType, ID: m.SenderID}) {
				other = partyRef{Type: m.SenderType, ID: m.SenderID}
			}
			conv := byParty[other]
			if conv == nil {
				conv = &conversation{Party: other, Last: m}
				byParty[other] = conv
			}
			if m.CreatedAt.After(conv.Last.CreatedAt) {
				conv.Last = m
			}
			conv.Count++
		}
	}
	var patients []string
	for _, conv := range byParty {
		v.Conversations = append(v.Conversations, *conv)
		if conv.Party.Type == message.PartyPatient {
			patients = append(patients, conv.Party.ID)
		}
	}
	slices.SortFunc(v.Conversations, func(a, b conversation) int { return b.Last.CreatedAt.Compare(a.Last.CreatedAt) })
	if len(patients) > message.MaxActiveCallbackPatients {
		patients = patients[:message.MaxActiveCallbackPatients]
	}
	callbacks, err := s.messageStore().ActiveCallbacks(ctx, claims, patients)
	if err != nil {
		s.abortInternal(c, "list active callbacks", err)
		return
	}
	v.Callbacks = sortedCallbacks(callbacks)
	v.Streams = streams(nil, v)
	s.renderMessages(c, status, "Messages", "", v)
}

// sortedCallbacks lists active callbacks oldest first (the longest
// waiting on top).
func sortedCallbacks(m map[string]message.Message) []message.Message {
	out := make([]message.Message, 0, len(m))
	for _, cb := range m {
		out = append(out, cb)
	}
	slices.SortFunc(out, func(a, b message.Message) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// conversationPage is one conversation with its send form.
func (s *Server) conversationPage(c *gin.Context) {
	claims := s.clinicianOrRefuse(c)
	if claims == nil {
		return
	}
	v := newMessagesView(claims)
	v.Form = sendForm{Sender: v.SendAs[0].Key(), Type: int(message.TypeGeneral)}
	s.renderConversation(c, http.StatusOK, "", claims, v)
}

// renderConversation loads and renders the conversation of the :party
// path parameter.
func (s *Server) renderConversation(c *gin.Context, status int, msg string, claims *auth.Claims, v *messagesView) {
	party, ok := parseParty(c.Param("party"))
	if !ok {
		s.pageError(c, http.StatusBadRequest, "Bad request",
			"The party must be a type ("+strings.Join(message.PartyTypes, ", ")+"), a colon and an id, such as patient:P-1.")
		return
	}
	v.Party = &party
	ctx := c.Request.Context()
	page, err := s.messageStore().List(ctx, claims, message.ListQuery{PartyID: party.ID, PartyType: party.Type, Limit: consoleThreadLimit})
	if err != nil {
		s.abortInternal(c, "list conversation", err)
		return
	}
	v.Thread, v.More = page.Items, page.Next != nil
	slices.Reverse(v.Thread)
	if party.Type == message.PartyPatient {
		callbacks, err := s.messageStore().ActiveCallbacks(ctx, claims, []string{party.ID})
		if err != nil {
			s.abortInternal(c, "list active callbacks", err)
			return
		}
		v.Callbacks = sortedCallbacks(callbacks)
	}
	// Follow the party, the others it talks with here, then the
	// clinician's own parties.
	follow := []partyRef{party}
	for _, m := range slices.Backward(v.Thread) {
		for _, p := range []partyRef{{Type: m.SenderType, ID: m.SenderID}, {Type: m.ReceiverType, ID: m.ReceiverID}} {
			if !slices.Contains(follow, p) {
				follow = append(follow, p)
			}
		}
	}
	v.Streams = streams(follow, v)
	s.renderMessages(c, status, "Messages with "+party.Key(), msg, v)
}

// consoleSendMessage sends the form's message to the conversation's party
// as the JSON API's POST /v1/messages does (same validation, same policy),
// then returns to the conversation; a refusal re-renders it with the
// reason next to the field and a 4xx status.
func (s *Server) consoleSendMessage(c *gin.Context) {
	if !s.checkConsoleForm(c) {
		return
	}
	claims := s.clinicianOrRefuse(c)
	if claims == nil {
		return
	}
	party, ok := parseParty(c.Param("party"))
	if !ok {
		s.pageError(c, http.StatusBadRequest, "Bad request",
			"The party must be a type ("+strings.Join(message.PartyTypes, ", ")+"), a colon and an id, such as patient:P-1.")
		return
	}
	v := newMessagesView(claims)
	v.Form = sendForm{Sender: c.PostForm("sender"), Content: strings.ReplaceAll(c.PostForm("content"), "\r\n", "\n")}
	refuse := func(status int, field, reason string) {
		v.Errors = map[string]string{field: reason}
		s.renderConversation(c, status, "Not sent: the "+strings.ReplaceAll(field, "_", " ")+" "+reason+".", claims, v)
	}
	typ, err := strconv.Atoi(c.PostForm("message_type"))
	if err != nil {
		refuse(http.StatusBadRequest, "message_type", "must be one of the listed types")
		return
	}
	v.Form.Type = typ
	sender, ok := parseParty(v.Form.Sender)
	if !ok {
		refuse(http.StatusBadRequest, "sender", "must be you or one of your wards")
		return
	}
	m := message.NewMessage{SenderID: sender.ID, SenderType: sender.Type, ReceiverID: party.ID, ReceiverType: party.Type,
		Type: message.Type(typ), Content: v.Form.Content}
	msg, err := s.sendMessage(c.Request.Context(), claims, m)
	var (
		fe *message.ForbiddenError
		ie *message.InvalidError
	)
	switch {
	case errors.As(err, &fe):
		refuse(http.StatusForbidden, formField(fe.Field), fe.Reason)
	case errors.As(err, &ie):
		refuse(http.StatusBadRequest, formField(ie.Field), ie.Reason)
	case err != nil:
		s.abortInternal(c, "send message", err)
	default:
		c.Redirect(http.StatusSeeOther, "/ui/messages/"+url.PathEscape(party.Key())+"#m-"+msg.ID)
	}
}

// formField names the send form's field a store refusal is about.
func formField(field string) string {
	switch {
	case strings.HasPrefix(field, "sender"):
		return "sender"
	case strings.HasPrefix(field, "receiver"):
		return "party"
	case strings.HasPrefix(field, "message_type"):
		return "message_type"
	case field == "":
		return "message"
	}
	return field
}
