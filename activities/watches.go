package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/sms"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Watches holds the capacity watch activities: polling the directory (with
// the snapshot written to Postgres, never into workflow history), recording
// decided changes, and notifying Slack and SMS.
type Watches struct {
	Store     *watch.Store
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
	Observations []watch.Observation
	PolledAt     time.Time
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
	if err := a.Store.StoreSnapshot(ctx, in.WatchID, in.PollID, now, services); err != nil {
		return nil, classifySQL(err)
	}
	if !in.ScheduledAt.IsZero() {
		first, err := a.Store.RecordPoll(ctx, watch.Poll{
			PollID: in.PollID, WatchID: in.WatchID, ScheduledAt: in.ScheduledAt, PolledAt: now, Services: len(services),
		})
		if err != nil {
			return nil, err
		}
		// The lag of the poll as recorded (its first successful attempt),
		// as `vigil bench watches` reads it from watch_polls.
		if first {
			a.Metrics.ObservePollLag(now.Sub(in.ScheduledAt))
		}
	}
	out := &PollResult{PolledAt: now, Observations: make([]watch.Observation, 0, len(services))}
	for _, s := range services {
		out.Observations = append(out.Observations, watch.Observation{
			ServiceStatus: watch.ServiceStatus{
				ServiceID: s.ID, Name: s.Name, Region: s.Region, Type: s.Type, Capacity: s.Capacity, RAG: s.RAG,
			},
			UpdatedBy: s.UpdatedBy, UpdatedAt: s.UpdatedAt,
		})
	}
	return out, nil
}

// RecordChangesInput is what one poll decided.
type RecordChangesInput struct {
	WatchID string
	PollID  string
	At      time.Time
	Changes []watch.Change
	// Current are the services' statuses after the poll.
	Current []watch.Observation
	// State is the watch's state (active, paused, degraded).
	State string
}

// RecordChanges upserts current statuses and appends the changes; replays of
// the same poll are no-ops.
func (a *Watches) RecordChanges(ctx context.Context, in *RecordChangesInput) error {
	recorded, err := a.Store.RecordChanges(ctx, watch.PollOutcome{
		WatchID: in.WatchID, PollID: in.PollID, At: in.At, Changes: in.Changes, Current: in.Current, State: in.State,
	})
	if err != nil {
		return classifySQL(err)
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
	st := watch.OperatorState{
		WatchID: in.WatchID, State: in.State, Actor: in.Signal.Actor, At: in.Signal.At, Reason: in.Signal.Reason,
	}
	err := a.Store.SetOperatorState(ctx, st, func(ctx context.Context, tx watch.Execer) error {
		return recordOperatorSignal(ctx, tx, &in.Signal)
	})
	var classified *temporal.ApplicationError
	if errors.As(err, &classified) {
		return err // the signal's row, classified already
	}
	return classifySQL(err)
}

// NotifyChangeInput announces one change of one watch.
type NotifyChangeInput struct {
	WatchID      string
	PollID       string
	Description  string
	Change       watch.Change
	SlackChannel string
	SMSNumbers   []string
}

// NotifyChange tells the watch's Slack channel and SMS numbers about a
// change. Each target that is reached is recorded on the change's row at
// once, so a retry (after, say, the second SMS failed) skips the targets
// already told; a crash between one send and its record can repeat that one
// send (at least once, per target).
func (a *Watches) NotifyChange(ctx context.Context, in *NotifyChangeInput) error {
	key := watch.ChangeKey{PollID: in.PollID, ServiceID: in.Change.ServiceID, Kind: in.Change.Kind}
	done, err := a.Store.NotifiedTargets(ctx, key)
	if errors.Is(err, watch.ErrChangeNotRecorded) {
		return temporal.NewNonRetryableApplicationError("change not recorded", "NotRecorded", err)
	}
	if err != nil {
		return err
	}
	sent := func(target string) bool { return slices.Contains(done, target) }
	mark := func(target string) error { return a.Store.MarkTargetNotified(ctx, key, target) }
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
	return a.Store.MarkNotified(ctx, key)
}

// SlackChangeMessage renders a change as the seed did: a colour by status
// (HIGH good, LOW warning, NONE danger) and the fields Previously, Region,
// Changed At and Type Of Service; robot resets are worded distinctly.
func SlackChangeMessage(c watch.Change, loc *time.Location) (string, slack.Attachment) {
	var text, color string
	switch {
	case c.Kind == watch.ChangeRobotReset || c.ChangedBy == directory.RobotUser:
		text = fmt.Sprintf("%s status was reset by the :robot_face:", c.Name)
	case c.Kind == watch.ChangeDisappeared:
		none := slackLooks[directory.CapacityNone]
		text = fmt.Sprintf("%s is no longer returned by the directory search: reported as %s NONE", c.Name, none.emoji)
		color = none.color
	default:
		look := slackLooks[c.Capacity]
		color = look.color
		text = fmt.Sprintf("%s was changed by a user to %s %s", c.Name, look.emoji, orReset(c.Capacity))
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

// slackLook is how Slack shows a capacity: the seed's status emoji, and the
// attachment colour of a change to it.
type slackLook struct{ emoji, color string }

// slackLooks are the looks of the known capacities; any other (reset or
// unknown) has neither emoji nor colour.
var slackLooks = map[string]slackLook{
	directory.CapacityHigh: {":green_heart:", "good"},
	directory.CapacityLow:  {":large_orange_diamond:", "warning"},
	directory.CapacityNone: {":red_circle:", "danger"},
}

// SMSChangeText is the seed's SMS format:
// "{name} ({id}) in {region} changed to {status} ({rag}) by {by} at {time}."
func SMSChangeText(c watch.Change, loc *time.Location) string {
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
