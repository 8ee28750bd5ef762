package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/keyset"
)

// Store reads and writes messages. Every method takes the caller's verified
// token claims and applies the policy to them.
type Store struct {
	// DB is the Vigil database.
	DB *sqlx.DB
	// Batcher, when set, groups concurrent creates into shared commits;
	// it must be long-lived (one per process).
	Batcher *Batcher
}

// columns are the columns of Message.
const columns = `id, created_at, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type,
	type, content, related_message, internal, retrieved, confirmed, confirmed_by, cancelled, cancelled_by, modified_at, stream_seq`

// Validate checks m's fields (not who may send it) and returns an
// *InvalidError naming the first bad field, or nil.
func (m NewMessage) Validate() error {
	checkParty := func(prefix, id, typ string) error {
		if !slices.Contains(PartyTypes, typ) {
			return &InvalidError{Field: prefix + "_type", Reason: "must be one of " + strings.Join(PartyTypes, ", ")}
		}
		if !ValidPartyID(id) {
			return &InvalidError{Field: prefix + "_id", Reason: "must be 1 to 128 letters, digits, '.', '_', ':', '@' or '-'"}
		}
		return nil
	}
	if err := checkParty("sender", m.SenderID, m.SenderType); err != nil {
		return err
	}
	if err := checkParty("receiver", m.ReceiverID, m.ReceiverType); err != nil {
		return err
	}
	if !m.Type.Valid() {
		return &InvalidError{Field: "message_type.value", Reason: "must be one of 0, 1, 2, 3, 5, 6, 7, 8, 9, 10 (4 is retired)"}
	}
	if reason := ValidContent(m.Content); reason != "" {
		return &InvalidError{Field: "content", Reason: reason}
	}
	if m.Related != nil && !uuidPattern.MatchString(*m.Related) {
		return &InvalidError{Field: "related_message", Reason: "must be a message id (a lower-case UUID)"}
	}
	return nil
}

// Create stores a new message sent by the caller. It returns an
// *InvalidError for a bad field (including a related message that does not
// exist or that the caller may not see) and a *ForbiddenError when the
// policy refuses.
func (s *Store) Create(ctx context.Context, c *auth.Claims, m NewMessage) (*Message, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if err := CanCreate(c, m); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("create message: new id: %w", err)
	}
	if s.Batcher != nil && m.Related == nil {
		return s.Batcher.insert(ctx, insertRow{
			ID: id.String(), CreatedBy: c.Subject, CreatedByType: c.SubjectType,
			SenderID: m.SenderID, SenderType: m.SenderType, ReceiverID: m.ReceiverID, ReceiverType: m.ReceiverType,
			Type: int64(m.Type), Content: m.Content, Internal: m.Internal,
		})
	}
	var a database.Args
	q := `INSERT INTO messages (id, created_by, created_by_type, sender_id, sender_type, receiver_id, receiver_type,
			type, content, related_message, internal)
		SELECT ` + a.Add(id.String()) + `, ` + a.Add(c.Subject) + `, ` + a.Add(c.SubjectType) + `, ` +
		a.Add(m.SenderID) + `, ` + a.Add(m.SenderType) + `, ` + a.Add(m.ReceiverID) + `, ` + a.Add(m.ReceiverType) + `, ` +
		a.Add(int(m.Type)) + `, ` + a.Add(m.Content) + `, ` + a.Add(m.Related) + `::uuid, ` + a.Add(m.Internal)
	if m.Related != nil {
		// The related message must exist and be visible to the caller; the
		// check and the insert are one statement (messages are never
		// deleted, so it cannot vanish in between).
		q += ` WHERE EXISTS (SELECT 1 FROM messages WHERE id = ` + a.Add(*m.Related) + `::uuid AND ` + visibilitySQL(c, a.Add) + `)`
	}
	q += ` RETURNING ` + columns
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create message: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := lockStreams(ctx, tx, []string{m.ReceiverID}); err != nil {
		return nil, err
	}
	var out Message
	if err := tx.GetContext(ctx, &out, q, a...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, &InvalidError{Field: "related_message", Reason: "no such message"}
		}
		return nil, fmt.Errorf("create message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create message: commit: %w", err)
	}
	out.fill()
	return &out, nil
}

// streamLockClass is the first key of the advisory locks that order each
// receiver's stream (the second is hashtext(receiver_id)); see
// migrations/00014_message_stream_seq.sql.
const streamLockClass = 1297303379

// lockStreams takes, in tx, the stream locks of the receivers, in one fixed
// order (so concurrent batches cannot deadlock). A message's stream_seq is
// drawn after its receiver's lock and the lock is held until commit, so for
// one receiver stream_seq order is commit order: a reader that sees a
// number sees every smaller one, and a stream resuming after a number
// misses nothing that commits later. Every insert into messages must call
// it first.
func lockStreams(ctx context.Context, tx *sqlx.Tx, receivers []string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, h)
		FROM (SELECT DISTINCT hashtext(r) AS h FROM unnest($2::text[]) r ORDER BY 1) k`,
		streamLockClass, pq.StringArray(receivers))
	if err != nil {
		return fmt.Errorf("create message: lock receiver stream: %w", err)
	}
	return nil
}

// Get returns the message with id, or ErrNotFound when it does not exist or
// the caller may not see it.
func (s *Store) Get(ctx context.Context, c *auth.Claims, id string) (*Message, error) {
	if !uuidPattern.MatchString(id) {
		return nil, ErrNotFound
	}
	var a database.Args
	q := `SELECT ` + columns + ` FROM messages WHERE id = ` + a.Add(id) + ` AND ` + visibilitySQL(c, a.Add)
	m, err := database.Get[Message](ctx, s.DB, ErrNotFound, "get message", q, a...)
	if err != nil {
		return nil, err
	}
	m.fill()
	return &m, nil
}

// Update applies p to the message with id and returns it. Retrieved,
// confirmed and cancelled are set once: a later value leaves the first one
// (and its "by") in place. confirmed_by and cancelled_by default to the
// caller's subject. It returns ErrNotFound for a message the caller may not
// see, a *ForbiddenError when the policy refuses and an *InvalidError for a
// bad related message or a "by" without its time.
func (s *Store) Update(ctx context.Context, c *auth.Claims, id string, p Patch) (*Message, error) {
	if p.Empty() {
		return nil, &InvalidError{Field: "", Reason: "the patch changes nothing"}
	}
	if !uuidPattern.MatchString(id) {
		return nil, ErrNotFound
	}
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update message: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	m, err := database.Get[Message](ctx, tx, ErrNotFound, "update message: read", `SELECT `+columns+` FROM messages WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, err
	}
	if !Visible(c, &m) {
		return nil, ErrNotFound
	}
	if err := CanPatch(c, &m, p); err != nil {
		return nil, err
	}
	if p.Related != nil {
		if *p.Related == id {
			return nil, &InvalidError{Field: "related_message", Reason: "must not be the message itself"}
		}
		if _, err := s.visibleID(ctx, tx, c, *p.Related); err != nil {
			return nil, err
		}
		m.Related = p.Related
	}
	if p.Retrieved != nil && m.Retrieved == nil {
		m.Retrieved = p.Retrieved
	}
	if p.ConfirmedBy != nil && p.Confirmed == nil && m.Confirmed == nil {
		return nil, &InvalidError{Field: "confirmed_by", Reason: "needs confirmed"}
	}
	if p.CancelledBy != nil && p.Cancelled == nil && m.Cancelled == nil {
		return nil, &InvalidError{Field: "cancelled_by", Reason: "needs cancelled"}
	}
	if p.Confirmed != nil && m.Confirmed == nil {
		m.Confirmed, m.ConfirmedBy = p.Confirmed, byOrCaller(p.ConfirmedBy, c)
	}
	if p.Cancelled != nil && m.Cancelled == nil {
		m.Cancelled, m.CancelledBy = p.Cancelled, byOrCaller(p.CancelledBy, c)
	}
	var out Message
	err = tx.GetContext(ctx, &out, `UPDATE messages SET retrieved = $2, confirmed = $3, confirmed_by = $4,
			cancelled = $5, cancelled_by = $6, related_message = $7
		WHERE id = $1 RETURNING `+columns,
		id, m.Retrieved, m.Confirmed, m.ConfirmedBy, m.Cancelled, m.CancelledBy, m.Related)
	if err != nil {
		return nil, fmt.Errorf("update message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("update message: commit: %w", err)
	}
	out.fill()
	return &out, nil
}

func byOrCaller(by *string, c *auth.Claims) *string {
	if by != nil {
		return by
	}
	sub := c.Subject
	return &sub
}

// visibleID checks that message id exists and the caller sees it; else it
// returns an *InvalidError for related_message.
func (s *Store) visibleID(ctx context.Context, q sqlx.QueryerContext, c *auth.Claims, id string) (string, error) {
	if !uuidPattern.MatchString(id) {
		return "", &InvalidError{Field: "related_message", Reason: "must be a message id (a lower-case UUID)"}
	}
	var a database.Args
	var got string
	err := sqlx.GetContext(ctx, q, &got, `SELECT id FROM messages WHERE id = `+a.Add(id)+` AND `+visibilitySQL(c, a.Add), a...)
	if errors.Is(err, sql.ErrNoRows) {
		return "", &InvalidError{Field: "related_message", Reason: "no such message"}
	}
	if err != nil {
		return "", fmt.Errorf("check related message: %w", err)
	}
	return got, nil
}

// ListQuery selects the messages List returns. Exactly one of SenderID,
// ReceiverID, both of them (a pair) or PartyID is set.
type ListQuery struct {
	// SenderID keeps messages sent by this party; SenderType, when set,
	// also requires its type.
	SenderID, SenderType string
	// ReceiverID keeps messages received by this party; ReceiverType,
	// when set, also requires its type.
	ReceiverID, ReceiverType string
	// PartyID keeps messages this party sent or received; PartyType, when
	// set, requires the type of the side PartyID is on.
	PartyID, PartyType string
	// Active keeps unconfirmed messages and callbacks.
	Active bool
	// ActiveCallbacks keeps callbacks neither confirmed nor cancelled.
	ActiveCallbacks bool
	// Limit is the page size: 1 to MaxLimit, zero meaning DefaultLimit.
	Limit int
	// Cursor continues after this position (the previous page's Next).
	Cursor *Cursor
}

// Page is one page of a list.
type Page = keyset.Page[Message, Cursor]

func (q ListQuery) check() error {
	party := q.PartyID != ""
	if party == (q.SenderID != "" || q.ReceiverID != "") {
		return fmt.Errorf("%w: set a party, or a sender and/or a receiver", ErrInvalidQuery)
	}
	for _, id := range []string{q.SenderID, q.ReceiverID, q.PartyID} {
		if id != "" && !ValidPartyID(id) {
			return fmt.Errorf("%w: party id %q", ErrInvalidQuery, id)
		}
	}
	for _, t := range []string{q.SenderType, q.ReceiverType, q.PartyType} {
		if t != "" && !slices.Contains(PartyTypes, t) {
			return fmt.Errorf("%w: party type %q", ErrInvalidQuery, t)
		}
	}
	return nil
}

// List returns the messages matching q that the caller may see, newest
// first (by created_at, then id), one page at a time. Messages created while
// paging sort before the first page, so pages neither repeat nor skip.
// A patient listing by an id other than its own gets a *ForbiddenError.
func (s *Store) List(ctx context.Context, c *auth.Claims, q ListQuery) (*Page, error) {
	limit, err := keyset.PageSize(q.Limit, DefaultLimit, MaxLimit, ErrInvalidQuery)
	if err != nil {
		return nil, err
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	if err := CanList(c, slices.DeleteFunc([]string{q.SenderID, q.ReceiverID, q.PartyID}, func(s string) bool { return s == "" })...); err != nil {
		return nil, err
	}
	var a database.Args
	// common are the conditions of every branch; the arguments are shared
	// by both branches of a party list.
	common := []string{visibilitySQL(c, a.Add)}
	if q.Active {
		common = append(common, "(confirmed IS NULL OR type = 5)")
	}
	if q.ActiveCallbacks {
		common = append(common, "type = 5 AND confirmed IS NULL AND cancelled IS NULL")
	}
	if q.Cursor != nil {
		common = append(common, "(created_at, id) < ("+a.Add(q.Cursor.CreatedAt)+", "+a.Add(q.Cursor.ID)+"::uuid)")
	}
	lim := a.Add(limit + 1) // one row more tells whether another page follows
	branch := func(conds []string) string {
		return `SELECT ` + columns + ` FROM messages WHERE ` + strings.Join(append(slices.Clone(common), conds...), " AND ") +
			` ORDER BY created_at DESC, id DESC LIMIT ` + lim
	}
	var sqlText string
	if q.PartyID != "" {
		p := a.Add(q.PartyID)
		asSender := []string{"sender_id = " + p}
		asReceiver := []string{"receiver_id = " + p}
		if q.PartyType != "" {
			t := a.Add(q.PartyType)
			asSender = append(asSender, "sender_type = "+t)
			asReceiver = append(asReceiver, "receiver_type = "+t, "NOT (sender_id = "+p+" AND sender_type = "+t+")")
		} else {
			asReceiver = append(asReceiver, "sender_id <> "+p)
		}
		// Two ordered index scans (by sender, by receiver), each stopping
		// after one page, merged: far cheaper than one scan of an OR.
		sqlText = `SELECT * FROM ((` + branch(asSender) + `) UNION ALL (` + branch(asReceiver) + `)) m
			ORDER BY created_at DESC, id DESC LIMIT ` + lim
	} else {
		var conds []string
		if q.SenderID != "" {
			conds = append(conds, "sender_id = "+a.Add(q.SenderID))
		}
		if q.SenderType != "" {
			conds = append(conds, "sender_type = "+a.Add(q.SenderType))
		}
		if q.ReceiverID != "" {
			conds = append(conds, "receiver_id = "+a.Add(q.ReceiverID))
		}
		if q.ReceiverType != "" {
			conds = append(conds, "receiver_type = "+a.Add(q.ReceiverType))
		}
		sqlText = branch(conds)
	}
	items, err := database.SelectEach(ctx, s.DB, (*Message).fill, "list messages", sqlText, a...)
	if err != nil {
		return nil, err
	}
	return keyset.NewPage(items, limit, func(last *Message) Cursor { return Cursor{CreatedAt: last.CreatedAt, ID: last.ID} }), nil
}

// ActiveCallbacks returns, for each patient id, the newest callback that
// patient sent which is neither confirmed nor cancelled; patients without
// one are absent from the map. A patient may ask only about itself.
func (s *Store) ActiveCallbacks(ctx context.Context, c *auth.Claims, patientIDs []string) (map[string]Message, error) {
	if len(patientIDs) > MaxActiveCallbackPatients {
		return nil, fmt.Errorf("%w: %d patients, at most %d", ErrInvalidQuery, len(patientIDs), MaxActiveCallbackPatients)
	}
	for _, id := range patientIDs {
		if !ValidPartyID(id) {
			return nil, fmt.Errorf("%w: patient id %q", ErrInvalidQuery, id)
		}
		if err := CanList(c, id); err != nil {
			return nil, err
		}
	}
	out := map[string]Message{}
	if len(patientIDs) == 0 {
		return out, nil
	}
	var a database.Args
	q := `SELECT DISTINCT ON (sender_id) ` + columns + ` FROM messages
		WHERE sender_type = 'patient' AND sender_id = ANY(` + a.Add(pq.StringArray(patientIDs)) + `)
			AND type = 5 AND confirmed IS NULL AND cancelled IS NULL AND ` + visibilitySQL(c, a.Add) + `
		ORDER BY sender_id, created_at DESC, id DESC`
	var rows []Message
	if err := s.DB.SelectContext(ctx, &rows, q, a...); err != nil {
		return nil, fmt.Errorf("list active callbacks: %w", err)
	}
	for _, m := range rows {
		m.fill()
		out[m.SenderID] = m
	}
	return out, nil
}

// Received returns up to limit messages to receiverID (of receiverType,
// when set) after stream position after (a StreamSeq), in stream order, that
// the caller may see: what a receiver's stream sends next. Positions are in
// commit order per receiver (see lockStreams), so reading on from the last
// one returned neither repeats nor skips. A patient may follow only itself.
func (s *Store) Received(ctx context.Context, c *auth.Claims, receiverID, receiverType string, after int64, limit int) ([]Message, error) {
	if !ValidPartyID(receiverID) || (receiverType != "" && !slices.Contains(PartyTypes, receiverType)) || limit < 1 || limit > MaxLimit || after < 0 {
		return nil, fmt.Errorf("%w: receiver %q of type %q, after %d, limit %d", ErrInvalidQuery, receiverID, receiverType, after, limit)
	}
	if err := CanList(c, receiverID); err != nil {
		return nil, err
	}
	var a database.Args
	q := `SELECT ` + columns + ` FROM messages WHERE receiver_id = ` + a.Add(receiverID) + ` AND stream_seq > ` + a.Add(after)
	if receiverType != "" {
		q += ` AND receiver_type = ` + a.Add(receiverType)
	}
	q += ` AND ` + visibilitySQL(c, a.Add) + ` ORDER BY stream_seq LIMIT ` + a.Add(limit)
	return database.SelectEach(ctx, s.DB, (*Message).fill, "list received messages", q, a...)
}

// StreamStart is where a new stream of receiverID's messages starts when it
// does not resume: before the messages stored in the last window (so one
// stored while the stream was opening is not missed), or at the receiver's
// newest message when there are none. Received(…, StreamStart(…), …) then
// returns those and everything stored later.
func (s *Store) StreamStart(ctx context.Context, receiverID string, window time.Duration) (int64, error) {
	var pos int64
	err := s.DB.GetContext(ctx, &pos, `SELECT COALESCE(
			(SELECT min(stream_seq) - 1 FROM messages WHERE receiver_id = $1 AND created_at >= now() - make_interval(secs => $2)),
			(SELECT max(stream_seq) FROM messages WHERE receiver_id = $1),
			0)`, receiverID, window.Seconds())
	if err != nil {
		return 0, fmt.Errorf("read message stream start: %w", err)
	}
	return pos, nil
}
