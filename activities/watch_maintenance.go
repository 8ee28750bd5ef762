package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/watch"
)

// CapacityMaintenance holds the scheduled capacity housekeeping activities:
// snapshot retention and the periodic Slack summary of services below HIGH.
type CapacityMaintenance struct {
	Store *watch.Store
	// Slack is optional (nil posts no summary).
	Slack *slacknotify.Client
	// London is the zone the summary's time is shown in; nil means UTC.
	London *time.Location
}

// DefaultDeleteBatch is the batch size DeleteOldSnapshots uses when none is
// given.
const DefaultDeleteBatch = 10000

// DeleteSnapshotsInput names the snapshots to delete.
type DeleteSnapshotsInput struct {
	// Before is the cut-off: snapshots polled before it are deleted.
	Before time.Time
	// BatchSize is how many rows one DELETE removes; zero means
	// DefaultDeleteBatch.
	BatchSize int
}

// DeleteSnapshotsResult is how many snapshots were deleted, by every
// attempt of the activity together.
type DeleteSnapshotsResult struct {
	Deleted int64
}

// DeleteOldSnapshots deletes the snapshots polled before in.Before, one
// short DELETE per batch so no statement holds locks for long, heartbeating
// the running total between batches. It is idempotent: a retry deletes
// what is left and carries on the count from the last heartbeat.
func (a *CapacityMaintenance) DeleteOldSnapshots(ctx context.Context, in *DeleteSnapshotsInput) (*DeleteSnapshotsResult, error) {
	if in == nil || in.Before.IsZero() {
		return nil, temporal.NewNonRetryableApplicationError("a cut-off time is required", ErrTypeInvalidInput, nil)
	}
	batch := in.BatchSize
	if batch <= 0 {
		batch = DefaultDeleteBatch
	}
	var total int64
	inActivity := activity.IsActivity(ctx)
	if inActivity && activity.HasHeartbeatDetails(ctx) {
		// A retry: the previous attempts' deletions count too.
		_ = activity.GetHeartbeatDetails(ctx, &total)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("delete snapshots before %s: %w", in.Before.Format(time.RFC3339), err)
		}
		n, err := a.Store.DeleteSnapshotsBefore(ctx, in.Before, batch)
		if err != nil {
			return nil, err
		}
		total += n
		if inActivity {
			activity.RecordHeartbeat(ctx, total)
		}
		if n < int64(batch) {
			return &DeleteSnapshotsResult{Deleted: total}, nil
		}
	}
}

// PostSummaryInput is one periodic summary.
type PostSummaryInput struct {
	// Channel receives the summary; empty posts nothing.
	Channel string
	// At is the time the summary speaks of (the schedule's nominal time).
	At time.Time
}

// PostSummaryResult is what was posted.
type PostSummaryResult struct {
	// Posted is false when Slack is not configured or no channel is set.
	Posted bool
	// Services is how many services were below HIGH.
	Services int
	// TS is the posted message's timestamp.
	TS string
}

// maxSummaryFields keeps a summary well inside Slack's message limits; the
// rest are counted in a last field.
const maxSummaryFields = 100

// PostCapacitySummary posts the services currently below HIGH (capacity
// neither HIGH nor the robot's reset "") to Slack, worst first. Delivery is
// at least once: a retry after a post whose answer was lost posts again, a
// harmless duplicate; once a post succeeds the activity completes.
func (a *CapacityMaintenance) PostCapacitySummary(ctx context.Context, in *PostSummaryInput) (*PostSummaryResult, error) {
	if in == nil || in.Channel == "" || a.Slack == nil {
		return &PostSummaryResult{}, nil
	}
	services, err := a.Store.LowCapacityServices(ctx)
	if err != nil {
		return nil, err
	}
	text, att := SlackSummaryMessage(services, in.At, a.London)
	ts, err := a.Slack.PostAttachment(ctx, in.Channel, text, att)
	if err != nil {
		return nil, slackActivityError(fmt.Errorf("post capacity summary: %w", err))
	}
	return &PostSummaryResult{Posted: true, Services: len(services), TS: ts}, nil
}

// SlackSummaryMessage renders the seed's periodic summary: a line with the
// time (HH:MM in loc) and one short field per service, its name and its
// capacity with the status emoji.
func SlackSummaryMessage(services []watch.LowCapacityService, at time.Time, loc *time.Location) (string, slack.Attachment) {
	if loc == nil {
		loc = time.UTC
	}
	hhmm := at.In(loc).Format("15:04")
	text := fmt.Sprintf("At %s, there are no services indicating low capacity.", hhmm)
	if len(services) > 0 {
		text = fmt.Sprintf("At %s, these services are indicating low capacity (a status of NONE means they are not returning in DoS searches).", hhmm)
	}
	att := slack.Attachment{Fallback: "Capacity Status Summary"}
	for i, s := range services {
		if i == maxSummaryFields {
			att.Fields = append(att.Fields, slack.AttachmentField{
				Title: "…", Value: fmt.Sprintf("and %d more", len(services)-maxSummaryFields), Short: true,
			})
			break
		}
		title := s.Name
		if title == "" {
			title = s.ServiceID
		}
		value := s.Capacity
		if e := slackLooks[s.Capacity].emoji; e != "" {
			value = e + " " + s.Capacity
		}
		att.Fields = append(att.Fields, slack.AttachmentField{Title: title, Value: value, Short: true})
	}
	return text, att
}
