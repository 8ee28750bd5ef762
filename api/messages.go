package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/message"
)

// Scopes of the message endpoints. System tokens carry ScopeAll instead.
const (
	// ScopeReadMessage allows reading messages (lists, by id, streams,
	// active callbacks).
	ScopeReadMessage = "read:message"
	// ScopeWriteMessage allows creating messages and changing their state.
	ScopeWriteMessage = "write:message"
)

// maxMessageBodyBytes bounds a message request body: room for the largest
// content (10 KiB) even when every character is \u-escaped.
const maxMessageBodyBytes = 128 << 10

// messageSubjects are the token subjects that use the message endpoints;
// device and staff tokens are refused (403).
var messageSubjects = []string{auth.SubjectPatient, auth.SubjectClinician, auth.SubjectSystem}

// messageRoutes registers the messages API. Who may do what is decided by
// package message from the token's claims alone.
func (s *Server) messageRoutes(v1 *gin.RouterGroup) {
	read := s.requireSubject(messageSubjects, ScopeReadMessage)
	write := s.requireSubject(messageSubjects, ScopeWriteMessage)
	v1.POST("/messages", write, s.createMessage)
	v1.GET("/messages/:id", read, s.getMessage)
	v1.PATCH("/messages/:id", write, s.patchMessage)
	v1.GET("/senders/:id/messages", read, s.listMessages(listBySender))
	v1.GET("/senders/:id/receivers/:receiver_id/messages", read, s.listMessages(listByPair))
	v1.GET("/receivers/:id/messages", read, s.listMessages(listByReceiver))
	v1.GET("/receivers/:id/callbacks", read, s.listMessages(listCallbacks))
	v1.GET("/parties/:id/messages", read, s.listMessages(listByParty))
	v1.POST("/callbacks/active", read, s.activeCallbacks)
	v1.GET("/receivers/:id/messages/stream", queryTokenAuth(read), s.streamMessages)
}

func (s *Server) messageStore() *message.Store {
	return s.Stores.Messages
}

// MessagePage answers the message lists.
type MessagePage struct {
	Items []message.Message `json:"items"`
	// NextCursor fetches the next page; nil on the last one.
	NextCursor *string `json:"next_cursor"`
}

func badField(field, message string) *requestError {
	return &requestError{Status: http.StatusBadRequest, Code: CodeInvalidField, Message: message, Field: field}
}

// strictDecode decodes exactly one JSON value from body into dst, refusing
// unknown fields.
func strictDecode(body []byte, dst any) *requestError {
	return decodeStrict(bytes.NewReader(body), dst, false)
}

// messageCreateRequest is the body of POST /v1/messages.
type messageCreateRequest struct {
	SenderID     *string `json:"sender_id"`
	SenderType   *string `json:"sender_type"`
	ReceiverID   *string `json:"receiver_id"`
	ReceiverType *string `json:"receiver_type"`
	MessageType  *struct {
		Value *int `json:"value"`
	} `json:"message_type"`
	Content        *string `json:"content"`
	RelatedMessage *string `json:"related_message"`
	Internal       *bool   `json:"internal"`
}

// decodeMessageCreate parses and validates a create body. It never panics;
// every refusal is a 4xx naming the field where there is one.
func decodeMessageCreate(body []byte) (message.NewMessage, *requestError) {
	var req messageCreateRequest
	var m message.NewMessage
	if re := strictDecode(body, &req); re != nil {
		return m, re
	}
	required := []struct {
		name string
		v    *string
	}{{"sender_id", req.SenderID}, {"sender_type", req.SenderType}, {"receiver_id", req.ReceiverID}, {"receiver_type", req.ReceiverType}}
	for _, f := range required {
		if f.v == nil {
			return m, badField(f.name, "is required")
		}
	}
	if req.MessageType == nil || req.MessageType.Value == nil {
		return m, badField("message_type.value", "is required")
	}
	if req.Content == nil {
		return m, badField("content", "is required")
	}
	m = message.NewMessage{
		SenderID: *req.SenderID, SenderType: *req.SenderType,
		ReceiverID: *req.ReceiverID, ReceiverType: *req.ReceiverType,
		Type: message.Type(*req.MessageType.Value), Content: *req.Content,
	}
	if req.RelatedMessage != nil {
		id, err := uuid.Parse(*req.RelatedMessage)
		if err != nil {
			return m, badField("related_message", "must be a message id (UUID)")
		}
		related := id.String()
		m.Related = &related
	}
	if req.Internal != nil {
		m.Internal = *req.Internal
	}
	if err := m.Validate(); err != nil {
		var ie *message.InvalidError
		if errors.As(err, &ie) {
			return m, badField(ie.Field, ie.Reason)
		}
		return m, badField("", err.Error())
	}
	return m, nil
}

// patchFields are the fields PATCH changes; immutableFields are the
// message's other fields, refused by name.
var (
	patchFields     = []string{"retrieved", "confirmed", "confirmed_by", "cancelled", "cancelled_by", "related_message"}
	immutableFields = []string{"id", "created_at", "created_by", "created_by_type", "sender_id", "sender_type",
		"receiver_id", "receiver_type", "message_type", "content", "internal", "modified_at"}
)

// Bounds of the state times a PATCH sets.
var (
	minStateTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxStateTime = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// decodeMessagePatch parses and validates a PATCH body: a non-empty object
// of patchFields only, none null. It never panics; every refusal is a 4xx
// naming the field where there is one.
func decodeMessagePatch(body []byte) (message.Patch, *requestError) {
	var p message.Patch
	var raw map[string]json.RawMessage
	if re := strictDecode(body, &raw); re != nil {
		return p, re
	}
	if len(raw) == 0 {
		return p, &requestError{Status: http.StatusBadRequest, Code: CodeInvalidJSON,
			Message: "the body must set at least one of " + strings.Join(patchFields, ", ")}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same field is named for the same body
	for _, k := range keys {
		if slices.Contains(immutableFields, k) {
			return p, badField(k, "cannot be changed; only "+strings.Join(patchFields, ", ")+" can")
		}
		if !slices.Contains(patchFields, k) {
			return p, unknownField(k)
		}
	}
	for _, k := range keys {
		var v *string
		if err := json.Unmarshal(raw[k], &v); err != nil {
			return p, badField(k, "must be a JSON string")
		}
		if v == nil {
			return p, badField(k, "must not be null; message state is never cleared")
		}
		switch k {
		case "retrieved", "confirmed", "cancelled":
			t, err := time.Parse(time.RFC3339Nano, *v)
			if err != nil || t.Before(minStateTime) || !t.Before(maxStateTime) {
				return p, badField(k, "must be an RFC 3339 time such as 2026-07-15T10:00:00Z")
			}
			t = t.UTC()
			switch k {
			case "retrieved":
				p.Retrieved = &t
			case "confirmed":
				p.Confirmed = &t
			default:
				p.Cancelled = &t
			}
		case "confirmed_by", "cancelled_by":
			if !message.ValidPartyID(*v) {
				return p, badField(k, "must be a party id (1 to 128 letters, digits, '.', '_', ':', '@' or '-')")
			}
			if k == "confirmed_by" {
				p.ConfirmedBy = v
			} else {
				p.CancelledBy = v
			}
		case "related_message":
			id, err := uuid.Parse(*v)
			if err != nil {
				return p, badField(k, "must be a message id (UUID)")
			}
			related := id.String()
			p.Related = &related
		}
	}
	return p, nil
}

// decodeCallbackPatients parses the body of POST /v1/callbacks/active: a
// JSON array of at most 500 patient ids. Duplicates are dropped.
func decodeCallbackPatients(body []byte) ([]string, *requestError) {
	notArray := &requestError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "the body must be a JSON array of patient ids"}
	var raw []json.RawMessage
	if re := strictDecode(body, &raw); re != nil {
		if re.Code == CodeInvalidJSON && strings.Contains(re.Message, "JSON object") {
			return nil, notArray
		}
		return nil, re
	}
	if raw == nil {
		return nil, notArray
	}
	if len(raw) > message.MaxActiveCallbackPatients {
		return nil, badField("[]", fmt.Sprintf("must hold at most %d patient ids", message.MaxActiveCallbackPatients))
	}
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		var id string
		if err := json.Unmarshal(r, &id); err != nil || !message.ValidPartyID(id) {
			return nil, badField("["+strconv.Itoa(i)+"]", "must be a patient id (1 to 128 letters, digits, '.', '_', ':', '@' or '-')")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// abortMessageError answers a store error: not found (or not visible) 404,
// refused by the policy 403, refused by the data 400, anything else 500.
func (s *Server) abortMessageError(c *gin.Context, what string, err error) {
	var fe *message.ForbiddenError
	var ie *message.InvalidError
	switch {
	case errors.Is(err, message.ErrNotFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no such message", "")
	case errors.As(err, &fe):
		abortWithError(c, http.StatusForbidden, CodeForbidden, fe.Reason, fe.Field)
	case errors.As(err, &ie):
		abortWithError(c, http.StatusBadRequest, CodeInvalidField, ie.Reason, ie.Field)
	case errors.Is(err, context.Canceled):
		c.Abort() // the client left
	default:
		s.abortInternal(c, what, err)
	}
}

// answerMessageStore answers a message store call (what): its error as
// abortMessageError maps it, or 200 with out.
func (s *Server) answerMessageStore(c *gin.Context, what string, out any, err error) {
	if err != nil {
		s.abortMessageError(c, what, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// readMessageBody reads a message endpoint's JSON body (at most
// maxMessageBodyBytes) and decodes it with decode; ok is false when it has
// answered the refusal.
func readMessageBody[T any](c *gin.Context, decode func([]byte) (T, *requestError)) (v T, ok bool) {
	body, ok := readJSONBody(c, maxMessageBodyBytes)
	if !ok {
		return v, false
	}
	v, re := decode(body)
	if re != nil {
		re.abort(c)
		return v, false
	}
	return v, true
}

// createMessage stores a new message from the caller (201).
func (s *Server) createMessage(c *gin.Context) {
	m, ok := readMessageBody(c, decodeMessageCreate)
	if !ok {
		return
	}
	msg, err := s.sendMessage(c.Request.Context(), principal(c), m)
	if err != nil {
		s.abortMessageError(c, "create message", err)
		return
	}
	answerCreated(c, "/v1/messages/"+msg.ID, msg)
}

// sendMessage stores m from the caller (the JSON API's and the console's
// send), counts it and wakes the receiver's streams.
func (s *Server) sendMessage(ctx context.Context, claims *auth.Claims, m message.NewMessage) (*message.Message, error) {
	msg, err := s.messageStore().Create(ctx, claims, m)
	if err != nil {
		return nil, err
	}
	s.Metrics.Access().MessageCreated(m.Type.Name())
	// Wake the receiver's streams (after the insert committed).
	s.bus().announce(message.NotifyChannel, msg.ReceiverID)
	return msg, nil
}

// messageID reads the :id path parameter as a message id.
func messageID(c *gin.Context) (string, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		abortInvalid(c, invalid("id", "must be a message id (UUID)"))
		return "", false
	}
	return id.String(), true
}

// getMessage returns one message the caller may see; others are 404.
func (s *Server) getMessage(c *gin.Context) {
	id, ok := messageID(c)
	if !ok {
		return
	}
	msg, err := s.messageStore().Get(c.Request.Context(), principal(c), id)
	s.answerMessageStore(c, "get message", msg, err)
}

// patchMessage changes a message's state.
func (s *Server) patchMessage(c *gin.Context) {
	id, ok := messageID(c)
	if !ok {
		return
	}
	p, ok := readMessageBody(c, decodeMessagePatch)
	if !ok {
		return
	}
	msg, err := s.messageStore().Update(c.Request.Context(), principal(c), id, p)
	s.answerMessageStore(c, "update message", msg, err)
}

// listKind is which list an endpoint serves.
type listKind int

const (
	listBySender listKind = iota
	listByReceiver
	listByPair
	listByParty
	listCallbacks
)

// partyParam reads a path parameter holding a party id.
func partyParam(c *gin.Context, name string) (string, *fieldError) {
	id := c.Param(name)
	if !message.ValidPartyID(id) {
		return "", invalid(name, "must be a party id (1 to 128 letters, digits, '.', '_', ':', '@' or '-')")
	}
	return id, nil
}

// partyTypeParam reads an optional party-type query parameter.
func partyTypeParam(c *gin.Context, name string) (string, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return "", nil
	}
	if !slices.Contains(message.PartyTypes, v) {
		return "", invalid(name, "must be one of "+strings.Join(message.PartyTypes, ", "))
	}
	return v, nil
}

// parseMessageList reads a list endpoint's path and query parameters.
func parseMessageList(c *gin.Context, kind listKind) (message.ListQuery, *fieldError) {
	var (
		q  message.ListQuery
		fe *fieldError
	)
	id, fe := partyParam(c, "id")
	if fe != nil {
		return q, fe
	}
	switch kind {
	case listBySender:
		q.SenderID = id
		q.SenderType, fe = partyTypeParam(c, "type")
	case listByReceiver, listCallbacks:
		q.ReceiverID = id
		q.ReceiverType, fe = partyTypeParam(c, "type")
		q.ActiveCallbacks = kind == listCallbacks
	case listByParty:
		q.PartyID = id
		q.PartyType, fe = partyTypeParam(c, "type")
	case listByPair:
		q.SenderID = id
		if q.ReceiverID, fe = partyParam(c, "receiver_id"); fe != nil {
			return q, fe
		}
		if q.SenderType, fe = partyTypeParam(c, "sender_type"); fe != nil {
			return q, fe
		}
		q.ReceiverType, fe = partyTypeParam(c, "receiver_type")
	}
	if fe != nil {
		return q, fe
	}
	if kind != listCallbacks {
		if q.Active, fe = boolParam(c, "active", q.Active); fe != nil {
			return q, fe
		}
	}
	if q.Limit, q.Cursor, fe = keysetPage(c, message.DefaultLimit, message.MaxLimit, message.DecodeCursor); fe != nil {
		return q, fe
	}
	return q, nil
}

// listMessages serves one of the message lists: newest first, paginated
// with a keyset cursor, filtered to what the caller may see.
func (s *Server) listMessages(kind listKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, fe := parseMessageList(c, kind)
		if fe != nil {
			abortInvalid(c, fe)
			return
		}
		page, err := s.messageStore().List(c.Request.Context(), principal(c), q)
		if err != nil {
			s.abortMessageError(c, "list messages", err)
			return
		}
		c.JSON(http.StatusOK, MessagePage{Items: page.Items, NextCursor: nextCursor(page.Next)})
	}
}

// activeCallbacks answers, for each patient id of the body, the newest
// active callback that patient sent (patients without one are absent).
func (s *Server) activeCallbacks(c *gin.Context) {
	ids, ok := readMessageBody(c, decodeCallbackPatients)
	if !ok {
		return
	}
	out, err := s.messageStore().ActiveCallbacks(c.Request.Context(), principal(c), ids)
	s.answerMessageStore(c, "list active callbacks", out, err)
}
