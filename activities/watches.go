package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/slack-go/slack"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Watches holds the capacity watch activities: polling the directory (with
// the snapshot written to Postgres, never into workflow history), recording
// decided changes, and notifying Slack and SMS.
type Watches struct {
	DB        *sqlx.DB
	Directory directory.Directory
	// Slack and SMS are optional (nil disables the channel).
	Slack *slacknotify.Client
	SMS   *sms.Client
	// London is the zone notification times are shown in.
	London *time.Location
	// Metrics, when set, counts polls, poll lag, changes and
	// notifications.
	Metrics *metrics.WatchMetrics
}

// PollInput is one poll of one watch.
type PollInput struct {
	WatchID string
	// PollID is unique per poll (workflow id, run and poll number): a
	// retried poll writes its snapshot rows once.
	PollID    string
	Kind      string
	ServiceID string
	Search    directory.SearchQuery
	// ScheduledAt is when the workflow meant the poll to happen; with the
	// poll's own time it gives the poll lag.
	ScheduledAt time.Time
}

// PollResult is the compact view of the poll the workflow decides on.
type PollResult struct {
	Observations []Observation
	PolledAt     time.Time
}

// Observation is one service's status in a poll.
type Observation struct {
	ServiceID string
	Name      string
	Region    string
	Type      string
	Capacity  string
	RAG       string
	UpdatedBy string
	UpdatedAt time.Time
}

// Error types of the watch activities.
const (
	ErrTypeDirectoryAuth = "DirectoryUnauthorized"
)

// Poll asks the directory and stores the snapshot in one multi-row insert.
// A service watch whose service is not found observes nothing (the workflow
// then reports it as NONE).
func (a *Watches) Poll(ctx context.Context, in *PollInput) (*PollResult, error) {
	var services []directory.Service
	var err error
	switch in.Kind {
	case "service":
		var s *directory.Service
		s, err = a.Directory.Service(ctx, in.ServiceID)
		if errors.Is(err, directory.ErrNotFound) {
			err = nil
		} else if err == nil {
			services = []directory.Service{*s}
		}
	default:
		services, err = a.Directory.Search(ctx, in.Search)
	}
	if errors.Is(err, directory.ErrUnauthorized) {
		a.Metrics.Polled("unauthorized")
		return nil, temporal.NewNonRetryableApplicationError("the directory refused the credentials", ErrTypeDirectoryAuth, err)
	}
	if err != nil {
		a.Metrics.Polled("error")
		return nil, fmt.Errorf("poll directory: %w", err)
	}
	a.Metrics.Polled("ok")
	now := time.Now().UTC()
	if err := a.storeSnapshot(ctx, in, now, services); err != nil {
		return nil, err
	}
	if !in.ScheduledAt.IsZero() {
		res, err := a.DB.ExecContext(ctx, `INSERT INTO watch_polls (poll_id, watch_id, scheduled_at, polled_at, services)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (poll_id) DO NOTHING`, in.PollID, in.WatchID, in.ScheduledAt, now, len(services))
		if err != nil {
			return nil, fmt.Errorf("record poll: %w", err)
		}
		// The lag of the poll as recorded (its first successful attempt),
		// as `vigil bench watches` reads it from watch_polls.
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			a.Metrics.ObservePollLag(now.Sub(in.ScheduledAt))
		}
	}
	out := &PollResult{PolledAt: now, Observations: make([]Observation, 0, len(services))}
	for _, s := range services {
		out.Observations = append(out.Observations, Observation{
			ServiceID: s.ID, Name: s.Name, Region: s.Region, Type: s.Type, Capacity: s.Capacity, RAG: s.RAG,
			UpdatedBy: s.UpdatedBy, UpdatedAt: s.UpdatedAt,
		})
	}
	return out, nil
}

// storeSnapshot writes every service of the poll in one statement.
func (a *Watches) storeSnapshot(ctx context.Context, in *PollInput, at time.Time, services []directory.Service) error {
	if len(services) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO snapshots (watch_id, poll_id, service_id, polled_at, name, type, postcode, region,
		easting, northing, capacity, rag, updated_by, updated_at) VALUES `)
	args := make([]any, 0, len(services)*14)
	for i, s := range services {
		if i > 0 {
			b.WriteString(",")
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12, n+13, n+14)
		args = append(args, in.WatchID, in.PollID, s.ID, at, s.Name, s.Type, s.Postcode, s.Region,
			nullInt(s.Easting), nullInt(s.Northing), s.Capacity, s.RAG, s.UpdatedBy, nullTime(s.UpdatedAt))
	}
	b.WriteString(" ON CONFLICT (poll_id, service_id) DO NOTHING")
	if _, err := a.DB.ExecContext(ctx, b.String(), args...); err != nil {
		return classifySQL(fmt.Errorf("store snapshot of %d services: %w", len(services), err))
	}
	return nil
}

// RecordChangesInput is what one poll decided.
type RecordChangesInput struct {
	WatchID string
	PollID  string
	At      time.Time
	Changes []ChangeRecord
	// Current are the services' statuses after the poll.
	Current []Observation
	// State is the watch's state (active, paused, degraded).
	State string
}

// ChangeRecord is one decided change, for the history.
type ChangeRecord struct {
	Kind, ServiceID, Name, Type, Region string
	Previous, PrevRAG, Capacity, RAG    string
	ChangedBy                           string
	ChangedAt                           time.Time
}

// RecordChanges upserts current statuses and appends the changes; replays of
// the same poll are no-ops.
func (a *Watches) RecordChanges(ctx context.Context, in *RecordChangesInput) error {
	tx, err := a.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var recorded []string // kinds of the changes new to the history
	for _, c := range in.Changes {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO status_changes (watch_id, service_id, name, type, region, previous_capacity, previous_rag,
				capacity, rag, kind, changed_by, changed_at, detected_at, poll_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
			ON CONFLICT (poll_id, service_id, kind) DO NOTHING`,
			in.WatchID, c.ServiceID, c.Name, c.Type, c.Region, c.Previous, c.PrevRAG, c.Capacity, c.RAG,
			c.Kind, c.ChangedBy, nullTime(c.ChangedAt), in.At, in.PollID)
		if err != nil {
			return classifySQL(fmt.Errorf("record change of %s: %w", c.ServiceID, err))
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			recorded = append(recorded, c.Kind)
		}
	}
	for _, o := range in.Current {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO service_statuses (service_id, name, type, region, capacity, rag, updated_by, updated_at, last_seen_at, watch_id,
				postcode, easting, northing)
			SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10, s.postcode, s.easting, s.northing
			FROM (SELECT postcode, easting, northing FROM snapshots WHERE poll_id = $11 AND service_id = $1
			      UNION ALL SELECT '', NULL::integer, NULL::integer LIMIT 1) s
			ON CONFLICT (service_id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type, region = EXCLUDED.region,
				capacity = EXCLUDED.capacity, rag = EXCLUDED.rag, updated_by = EXCLUDED.updated_by,
				updated_at = EXCLUDED.updated_at, last_seen_at = EXCLUDED.last_seen_at, watch_id = EXCLUDED.watch_id,
				postcode = COALESCE(NULLIF(EXCLUDED.postcode, ''), service_statuses.postcode),
				easting = COALESCE(EXCLUDED.easting, service_statuses.easting),
				northing = COALESCE(EXCLUDED.northing, service_statuses.northing)
			WHERE service_statuses.last_seen_at <= EXCLUDED.last_seen_at`,
			o.ServiceID, o.Name, o.Type, o.Region, o.Capacity, o.RAG, o.UpdatedBy, nullTime(o.UpdatedAt), in.At, in.WatchID, in.PollID); err != nil {
			return classifySQL(fmt.Errorf("update status of %s: %w", o.ServiceID, err))
		}
	}
	if in.State != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE watches SET state = $2, updated_at = now() WHERE id = $1 AND state <> 'deleted'`, in.WatchID, in.State); err != nil {
			return fmt.Errorf("update watch state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit poll %s: %w", in.PollID, err)
	}
	for _, kind := range recorded {
		a.Metrics.ChangeRecorded(kind)
	}
	return nil
}

// WatchOperatorStateInput is a pause or resume an operator signalled.
type WatchOperatorStateInput struct {
	WatchID string
	// State is the watch's state after the signal (active, paused,
	// degraded).
	State  string
	Signal OperatorSignalRecord
}

// RecordWatchOperatorState writes what an operator's pause or resume
// signal did, as the API does for its pause and resume: the watch's state,
// now with who changed it (operator:<name>), when and why, and the signal's
// row in operator_signals, in one transaction. A deleted watch keeps its
// state.
func (a *Watches) RecordWatchOperatorState(ctx context.Context, in *WatchOperatorStateInput) error {
	if in == nil || in.WatchID == "" || in.State == "" {
		return temporal.NewNonRetryableApplicationError("watch id and state are required", ErrTypeInvalidInput, nil)
	}
	tx, err := a.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE watches SET state = $2, state_changed_by = $3, state_changed_at = $4,
			state_reason = $5, updated_at = now()
		WHERE id = $1 AND state <> 'deleted'`,
		in.WatchID, in.State, in.Signal.Actor, in.Signal.At.UTC(), in.Signal.Reason); err != nil {
		return classifySQL(fmt.Errorf("update watch state: %w", err))
	}
	if err := insertOperatorSignal(ctx, tx, &in.Signal); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit watch state: %w", err)
	}
	return nil
}

// NotifyChangeInput announces one change of one watch.
type NotifyChangeInput struct {
	WatchID      string
	PollID       string
	Description  string
	Change       ChangeRecord
	SlackChannel string
	SMSNumbers   []string
}

// NotifyChange tells the watch's Slack channel and SMS numbers about a
// change. Each target that is reached is recorded on the change's row at
// once, so a retry (after, say, the second SMS failed) skips the targets
// already told; a crash between one send and its record can repeat that one
// send (at least once, per target).
func (a *Watches) NotifyChange(ctx context.Context, in *NotifyChangeInput) error {
	var done pq.StringArray
	err := a.DB.GetContext(ctx, &done, `SELECT notified_targets FROM status_changes WHERE poll_id = $1 AND service_id = $2 AND kind = $3`,
		in.PollID, in.Change.ServiceID, in.Change.Kind)
	if errors.Is(err, sql.ErrNoRows) {
		return temporal.NewNonRetryableApplicationError("change not recorded", "NotRecorded", err)
	}
	if err != nil {
		return fmt.Errorf("read change targets: %w", err)
	}
	sent := func(target string) bool { return slices.Contains(done, target) }
	mark := func(target string) error {
		_, err := a.DB.ExecContext(ctx, `UPDATE status_changes SET notified_targets = array_append(notified_targets, $4)
			WHERE poll_id = $1 AND service_id = $2 AND kind = $3 AND NOT ($4 = ANY(notified_targets))`,
			in.PollID, in.Change.ServiceID, in.Change.Kind, target)
		if err != nil {
			return fmt.Errorf("record notified target: %w", err)
		}
		return nil
	}
	if a.Slack != nil && in.SlackChannel != "" && !sent("slack:"+in.SlackChannel) {
		text, att := SlackChangeMessage(in.Change, a.London)
		if _, err := a.Slack.PostAttachment(ctx, in.SlackChannel, text, att); err != nil {
			var se *slacknotify.Error
			if !errors.As(err, &se) || !se.Permanent {
				a.Metrics.Notified("slack", "failed")
				return fmt.Errorf("post change to slack: %w", err)
			}
			// A bad channel is not retried; SMS still goes.
			a.Metrics.Notified("slack", "refused")
		} else {
			a.Metrics.Notified("slack", "sent")
			if err := mark("slack:" + in.SlackChannel); err != nil {
				return err
			}
		}
	}
	if a.SMS != nil {
		body := SMSChangeText(in.Change, a.London)
		for _, to := range in.SMSNumbers {
			if sent("sms:" + to) {
				continue
			}
			if _, err := a.SMS.Send(ctx, to, body); err != nil {
				if errors.Is(err, sms.ErrBadNumber) {
					a.Metrics.Notified("sms", "refused")
					continue // recorded by the provider's answer; not retried
				}
				a.Metrics.Notified("sms", "failed")
				return fmt.Errorf("send change by sms: %w", err)
			}
			a.Metrics.Notified("sms", "sent")
			if err := mark("sms:" + to); err != nil {
				return err
			}
		}
	}
	if _, err := a.DB.ExecContext(ctx, `UPDATE status_changes SET notified = true WHERE poll_id = $1 AND service_id = $2 AND kind = $3`,
		in.PollID, in.Change.ServiceID, in.Change.Kind); err != nil {
		return fmt.Errorf("mark change notified: %w", err)
	}
	return nil
}

// SlackChangeMessage renders a change as the seed did: a colour by status
// (HIGH good, LOW warning, NONE danger) and the fields Previously, Region,
// Changed At and Type Of Service; robot resets are worded distinctly.
func SlackChangeMessage(c ChangeRecord, loc *time.Location) (string, slack.Attachment) {
	var text, color string
	switch {
	case c.Kind == "robot_reset" || c.ChangedBy == directory.RobotUser:
		text = fmt.Sprintf("%s status was reset by the :robot_face:", c.Name)
	case c.Kind == "disappeared":
		text = fmt.Sprintf("%s is no longer returned by the directory search: reported as :red_circle: NONE", c.Name)
		color = "danger"
	default:
		emoji := ""
		switch c.Capacity {
		case directory.CapacityHigh:
			emoji, color = ":green_heart:", "good"
		case directory.CapacityLow:
			emoji, color = ":large_orange_diamond:", "warning"
		case directory.CapacityNone:
			emoji, color = ":red_circle:", "danger"
		}
		text = fmt.Sprintf("%s was changed by a user to %s %s", c.Name, emoji, orReset(c.Capacity))
	}
	att := slack.Attachment{
		Color: color, Fallback: text, Pretext: text,
		Fields: []slack.AttachmentField{
			{Title: "Previously", Value: orReset(c.Previous), Short: true},
			{Title: "Region", Value: c.Region, Short: true},
			{Title: "Changed At", Value: localTime(c.ChangedAt, loc), Short: true},
			{Title: "Type Of Service", Value: c.Type, Short: true},
		},
	}
	return text, att
}

// SMSChangeText is the seed's SMS format:
// "{name} ({id}) in {region} changed to {status} ({rag}) by {by} at {time}."
func SMSChangeText(c ChangeRecord, loc *time.Location) string {
	by := c.ChangedBy
	if by == "" {
		by = "unknown"
	}
	return fmt.Sprintf("%s (%s) in %s changed to %s (%s) by %s at %s.",
		c.Name, c.ServiceID, c.Region, orReset(c.Capacity), c.RAG, by, localTime(c.ChangedAt, loc))
}

func orReset(capacity string) string {
	if capacity == "" {
		return "(reset)"
	}
	return capacity
}

func localTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "unknown"
	}
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("02/01/2006 15:04")
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
