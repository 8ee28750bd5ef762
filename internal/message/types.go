// Package message keeps Vigil's typed, immutable messages between
// patients, clinicians, locations and systems, and decides who may create,
// read and update them.
//
// Every query runs with the caller's token claims: the authorisation rules
// (policy.go) exist both as pure functions over one message (CanCreate,
// Visible, CanPatch) and as the SQL filter every list and stream query
// carries, so a list never returns a message that Visible refuses. All SQL
// about messages lives in this package.
package message

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-health/vigil/internal/keyset"
)

// Type is a message type. Its integer values are fixed forever: clients
// store and compare them.
type Type int

// Message types. Value 4 (the old CALLBACK) is retired and refused.
const (
	TypeGeneral        Type = 0
	TypeDosage         Type = 1
	TypeDietary        Type = 2
	TypeFeedback       Type = 3
	TypeCallback       Type = 5
	TypeActivationCode Type = 6
	TypeRedAlert       Type = 7
	TypeAmberAlert     Type = 8
	TypeGreyAlert      Type = 9
	TypeClearAlerts    Type = 10
)

// typeNames names every valid type; it mirrors the message_types table.
var typeNames = map[Type]string{
	TypeGeneral:        "GENERAL",
	TypeDosage:         "DOSAGE",
	TypeDietary:        "DIETARY",
	TypeFeedback:       "FEEDBACK",
	TypeCallback:       "CALLBACK",
	TypeActivationCode: "ACTIVATION_CODE",
	TypeRedAlert:       "RED_ALERT",
	TypeAmberAlert:     "AMBER_ALERT",
	TypeGreyAlert:      "GREY_ALERT",
	TypeClearAlerts:    "CLEAR_ALERTS",
}

// Valid reports whether t is a current message type (not 4, not unknown).
func (t Type) Valid() bool {
	_, ok := typeNames[t]
	return ok
}

// Name is the type's name, such as CALLBACK; "" for an invalid type.
func (t Type) Name() string { return typeNames[t] }

// IsAlert reports whether t is RED_ALERT, AMBER_ALERT or GREY_ALERT: the
// types patients never see.
func (t Type) IsAlert() bool {
	return t == TypeRedAlert || t == TypeAmberAlert || t == TypeGreyAlert
}

// Party types: who sends and receives messages.
const (
	PartyPatient   = "patient"
	PartyClinician = "clinician"
	PartyLocation  = "location"
	PartySystem    = "system"
)

// PartyTypes are every valid party type.
var PartyTypes = []string{PartyPatient, PartyClinician, PartyLocation, PartySystem}

// Limits on message fields.
const (
	// MaxContentBytes bounds a message's content (UTF-8 bytes).
	MaxContentBytes = 10 * 1024
	// MaxPartyIDLength bounds a party id.
	MaxPartyIDLength = 128
)

// Page sizes of the lists.
const (
	// DefaultLimit is the page size when ListQuery.Limit is zero.
	DefaultLimit = 50
	// MaxLimit is the largest page size.
	MaxLimit = 500
	// MaxActiveCallbackPatients bounds ActiveCallbacks' patient list.
	MaxActiveCallbackPatients = 500
)

// NotifyChannel is the Postgres NOTIFY channel a new message is announced
// on, with the receiver id as payload. The API announces each message it
// stores after the insert has committed, in batches (a NOTIFY inside the
// inserting transaction would serialise every insert on Postgres's global
// notify lock); rows written by other means are not announced.
const NotifyChannel = "vigil_messages"

// partyIDPattern is what a party id looks like: letters, digits and a few
// separators (UUIDs, NHS-style ids, location codes).
var partyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)

// ValidPartyID reports whether id is a well-formed party id.
func ValidPartyID(id string) bool { return partyIDPattern.MatchString(id) }

// ValidContent reports why content is unacceptable, or "" when it is fine:
// non-blank, at most MaxContentBytes of valid UTF-8, and free of control
// characters other than newline and tab.
func ValidContent(content string) string {
	if len(content) > MaxContentBytes {
		return fmt.Sprintf("must be at most %d bytes", MaxContentBytes)
	}
	if !utf8.ValidString(content) {
		return "must be valid UTF-8"
	}
	blank := true
	for _, r := range content {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return "must not contain control characters (other than newline and tab)"
		case r != ' ':
			blank = false
		}
	}
	if blank {
		return "is required"
	}
	return ""
}

// Message is one stored message.
type Message struct {
	ID            string    `json:"id" db:"id"`
	CreatedAt     time.Time `json:"created_at" db:"created_at"`
	CreatedBy     string    `json:"created_by" db:"created_by"`
	CreatedByType string    `json:"created_by_type" db:"created_by_type"`
	SenderID      string    `json:"sender_id" db:"sender_id"`
	SenderType    string    `json:"sender_type" db:"sender_type"`
	ReceiverID    string    `json:"receiver_id" db:"receiver_id"`
	ReceiverType  string    `json:"receiver_type" db:"receiver_type"`
	// Type is the message type; JSON shows it as MessageType.
	Type        Type       `json:"-" db:"type"`
	MessageType TypeRef    `json:"message_type" db:"-"`
	Content     string     `json:"content" db:"content"`
	Related     *string    `json:"related_message" db:"related_message"`
	Internal    bool       `json:"internal" db:"internal"`
	Retrieved   *time.Time `json:"retrieved" db:"retrieved"`
	Confirmed   *time.Time `json:"confirmed" db:"confirmed"`
	ConfirmedBy *string    `json:"confirmed_by" db:"confirmed_by"`
	Cancelled   *time.Time `json:"cancelled" db:"cancelled"`
	CancelledBy *string    `json:"cancelled_by" db:"cancelled_by"`
	ModifiedAt  time.Time  `json:"modified_at" db:"modified_at"`
	// StreamSeq is the message's position in its receiver's stream (see
	// Store.Received); streams send it as the event id.
	StreamSeq int64 `json:"-" db:"stream_seq"`
}

// TypeRef is a message type as JSON shows it: its value and its name.
type TypeRef struct {
	Value Type   `json:"value"`
	Name  string `json:"name"`
}

// fill sets the derived fields after a scan.
func (m *Message) fill() {
	m.MessageType = TypeRef{Value: m.Type, Name: m.Type.Name()}
	m.CreatedAt = m.CreatedAt.UTC()
	m.ModifiedAt = m.ModifiedAt.UTC()
	for _, t := range []*time.Time{m.Retrieved, m.Confirmed, m.Cancelled} {
		if t != nil {
			*t = t.UTC()
		}
	}
}

// NewMessage is a message to create.
type NewMessage struct {
	SenderID, SenderType     string
	ReceiverID, ReceiverType string
	Type                     Type
	Content                  string
	// Related is the id of an existing message this one refers to.
	Related  *string
	Internal bool
}

// Patch changes a message's state. Nil fields stay as they are. The
// timestamps are set once: a message already retrieved, confirmed or
// cancelled keeps its first time (and "by").
type Patch struct {
	Retrieved   *time.Time
	Confirmed   *time.Time
	ConfirmedBy *string
	Cancelled   *time.Time
	CancelledBy *string
	Related     *string
}

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool {
	return p.Retrieved == nil && p.Confirmed == nil && p.ConfirmedBy == nil &&
		p.Cancelled == nil && p.CancelledBy == nil && p.Related == nil
}

// Errors the store returns. ErrNotFound covers messages the caller may not
// see, so existence never leaks.
var (
	// ErrNotFound is returned for a message that does not exist or that the
	// caller may not see.
	ErrNotFound = errors.New("message not found")
	// ErrInvalidQuery is returned for a list query the API should have
	// refused (a limit out of range, a malformed id): a programming error.
	ErrInvalidQuery = errors.New("invalid message query")
)

// ForbiddenError is a refusal by the authorisation policy (HTTP 403).
// Field names the request field the refusal is about, when there is one.
type ForbiddenError struct {
	Field  string
	Reason string
}

func (e *ForbiddenError) Error() string {
	if e.Field == "" {
		return "forbidden: " + e.Reason
	}
	return "forbidden: " + e.Field + ": " + e.Reason
}

// InvalidError is a request the data refuses (HTTP 400), such as a
// related_message that does not exist.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func forbidden(field, reason string) error { return &ForbiddenError{Field: field, Reason: reason} }

// Cursor is a position in the newest-first order of the lists: the last
// message of a page.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// cursorTag marks message-list cursors (see package keyset).
const cursorTag = "m1"

// Encode returns the cursor as an opaque, URL-safe string.
func (c Cursor) Encode() string { return keyset.Encode(cursorTag, c.CreatedAt, c.ID) }

// DecodeCursor parses a string made by Cursor.Encode.
func DecodeCursor(s string) (Cursor, error) {
	at, id, err := keyset.Decode(cursorTag, s)
	if err != nil {
		return Cursor{}, fmt.Errorf("message cursor: %w", err)
	}
	if !uuidPattern.MatchString(id) {
		return Cursor{}, fmt.Errorf("message cursor: id %s: %w", strconv.Quote(id), keyset.ErrInvalid)
	}
	return Cursor{CreatedAt: at, ID: id}, nil
}

// uuidPattern is a canonical lower-case UUID, as the store returns ids.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
