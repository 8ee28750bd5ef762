package oncall

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Load is how busy a person is when they are considered for an incident.
type Load struct {
	// InProgress counts incidents assigned to the person with status
	// IN_PROGRESS.
	InProgress int
	// Open counts incidents assigned to the person with status ASSIGNED,
	// ACKNOWLEDGED or IN_PROGRESS.
	Open int
	// LastPagedAt is when the person was last successfully paged (the latest
	// sent notification), or nil if never.
	LastPagedAt *time.Time
}

// Pick is the person chosen for an incident and why.
type Pick struct {
	Person
	// Load is the chosen person's load when they were picked.
	Load Load
	// Role is the role the person was picked for: the first requested role
	// with anyone on call, or with Fallback a role the person is on call for
	// (their own role when they are on call for it).
	Role string
	// Fallback reports that no requested role had anyone on call, so the
	// person was picked from everyone on call for any role.
	Fallback bool
	// Candidates is how many people were considered, the chosen one included.
	Candidates int

	// at is the instant of the pick, against which Reason measures time
	// since the last page.
	at time.Time
}

// Reason explains in one line why the person was picked, e.g. "NURSE on
// call; least busy of 3: 0 in progress, 1 open, last paged 12m ago".
func (p Pick) Reason() string {
	var b strings.Builder
	if p.Fallback {
		b.WriteString("nobody on call for the requested roles, fallback to anyone on call; ")
	}
	b.WriteString(p.Role)
	b.WriteString(" on call; ")
	if p.Candidates > 1 {
		fmt.Fprintf(&b, "least busy of %d: ", p.Candidates)
	} else {
		b.WriteString("only candidate: ")
	}
	fmt.Fprintf(&b, "%d in progress, %d open, ", p.Load.InProgress, p.Load.Open)
	if p.Load.LastPagedAt == nil {
		b.WriteString("never paged")
	} else {
		at := p.at
		if at.IsZero() {
			at = time.Now()
		}
		b.WriteString("last paged ")
		b.WriteString(ago(at.Sub(*p.Load.LastPagedAt)))
	}
	return b.String()
}

// ago renders a duration coarsely for humans: "40s ago", "12m ago",
// "3h5m ago", "2d4h ago".
func ago(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh ago", h)
		}
		return fmt.Sprintf("%dh%dm ago", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd ago", days)
		}
		return fmt.Sprintf("%dd%dh ago", days, h)
	}
}

// candidatesQuery lists the available people in duty except the ids in $5,
// with the role they are on call for and their load, least busy first: fewest
// incidents in progress, then fewest open, then longest since their last sent
// page (never paged first), then id.
const candidatesQuery = dutyCTE + `
SELECT c.*
FROM (
    SELECT s.id, s.name, s.role, s.access, s.phone, s.slack_user_id, s.email,
        (SELECT d.role FROM duty d WHERE d.staff_id = s.id
         ORDER BY d.role = s.role DESC, d.role LIMIT 1) AS duty_role,
        (SELECT count(*) FROM incidents i
         WHERE i.assigned_to = s.id AND i.status = 'IN_PROGRESS') AS in_progress,
        (SELECT count(*) FROM incidents i
         WHERE i.assigned_to = s.id AND i.status IN ('ASSIGNED', 'ACKNOWLEDGED', 'IN_PROGRESS')) AS open_count,
        (SELECT max(n.sent_at) FROM notification_outbox n
         WHERE n.recipient = s.id AND n.status = 'sent') AS last_paged_at
    FROM staff s
    WHERE s.available
      AND s.id IN (SELECT d.staff_id FROM duty d)
      AND NOT (s.id = ANY ($5::text[]))
) c
ORDER BY c.in_progress, c.open_count, c.last_paged_at ASC NULLS FIRST, c.id`

// candidate is one row of candidatesQuery.
type candidate struct {
	Person
	DutyRole    string     `db:"duty_role"`
	InProgress  int        `db:"in_progress"`
	Open        int        `db:"open_count"`
	LastPagedAt *time.Time `db:"last_paged_at"`
}

// PickAssignee chooses who to assign an incident to at the instant at. It
// tries roles in order and, for the first role with anyone on call once the
// ids in exclude are removed, picks the least busy: fewest incidents in
// progress, then fewest open (assigned, acknowledged or in progress), then
// longest since last paged (never paged counts as longest), then lowest id.
// If no listed role has anyone, it picks the same way from everyone on call
// for any role and sets Fallback. It returns ErrNobodyOnCall when nobody
// eligible is on call at all.
func (s *Schedule) PickAssignee(ctx context.Context, roles []string, at time.Time, exclude []string) (*Pick, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	for _, role := range roles {
		if role == "" {
			continue
		}
		p, err := s.pick(ctx, role, at, exclude)
		if err != nil {
			return nil, fmt.Errorf("pick assignee for %s: %w", role, err)
		}
		if p != nil {
			return p, nil
		}
	}
	p, err := s.pick(ctx, "", at, exclude)
	if err != nil {
		return nil, fmt.Errorf("pick assignee from anyone on call: %w", err)
	}
	if p == nil {
		return nil, ErrNobodyOnCall
	}
	p.Fallback = true
	return p, nil
}

// PickFailsafe chooses the least busy person on call for the failsafe role at
// the instant at, leaving out the ids in exclude. There is no fallback to
// other roles: it returns ErrNobodyOnCall when nobody eligible holds the
// failsafe role at that time.
func (s *Schedule) PickFailsafe(ctx context.Context, at time.Time, exclude []string) (*Pick, error) {
	role, err := s.FailsafeRole(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.pick(ctx, role, at, exclude)
	if err != nil {
		return nil, fmt.Errorf("pick failsafe %s: %w", role, err)
	}
	if p == nil {
		return nil, fmt.Errorf("failsafe %s: %w", role, ErrNobodyOnCall)
	}
	return p, nil
}

// pick returns the least busy candidate on call for role (the empty string for any role),
// or nil when there is none.
func (s *Schedule) pick(ctx context.Context, role string, at time.Time, exclude []string) (*Pick, error) {
	if exclude == nil {
		exclude = []string{} // a NULL array would exclude everyone
	}
	shift, weekday := ShiftAt(at, s.Location)
	var cands []candidate
	if err := s.DB.SelectContext(ctx, &cands, candidatesQuery,
		at, shift, weekday, role, pq.StringArray(exclude)); err != nil {
		return nil, err
	}
	if len(cands) == 0 {
		return nil, nil
	}
	c := cands[0]
	return &Pick{
		Person:     c.Person,
		Load:       Load{InProgress: c.InProgress, Open: c.Open, LastPagedAt: c.LastPagedAt},
		Role:       c.DutyRole,
		Candidates: len(cands),
		at:         at,
	}, nil
}
