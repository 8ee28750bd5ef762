package slacknotify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// ActionAcknowledge is the action_id of the Acknowledge button; its value is
// the incident id.
const ActionAcknowledge = "incident_acknowledge"

// MetadataEventType is the event_type of the message metadata Vigil attaches
// to every incident message; its payload holds "incident_id".
const MetadataEventType = "vigil_incident"

// Colours of the message's attachment bar, by severity; a resolved incident
// is green whatever its severity.
const (
	ColorCritical = "#d32f2f"
	ColorHigh     = "#f57c00"
	ColorMedium   = "#fbc02d"
	ColorLow      = "#9e9e9e"
	ColorResolved = "#2e7d32"
)

// IncidentMessage is what an incident's Slack message shows. It holds no
// patient identifier: Slack is outside the clinical record.
type IncidentMessage struct {
	IncidentID   string
	Status       string
	Severity     string
	AlertType    string
	Room         string
	AssigneeName string
	AlertCount   int
	OpenedAt     time.Time
	// Link is the incident's page in Vigil's web UI; empty shows no link.
	Link string
}

// Color is the attachment colour for the message's severity and status.
func (m IncidentMessage) Color() string {
	if m.Status == "RESOLVED" {
		return ColorResolved
	}
	switch m.Severity {
	case "CRITICAL":
		return ColorCritical
	case "HIGH":
		return ColorHigh
	case "MEDIUM":
		return ColorMedium
	default:
		return ColorLow
	}
}

// ShowAcknowledge reports whether the message carries the Acknowledge
// button: only while the incident awaits a responder.
func (m IncidentMessage) ShowAcknowledge() bool {
	return m.Status == "OPEN" || m.Status == "ASSIGNED"
}

// Text is the plain-text summary Slack shows in notifications and to
// clients that cannot render blocks.
func (m IncidentMessage) Text() string {
	s := fmt.Sprintf("%s %s incident", m.Severity, humanize(m.AlertType))
	if m.Room != "" {
		s += " in " + m.Room
	}
	return s + ": " + humanize(m.Status)
}

// Blocks are the Block Kit blocks of the message: a summary with fields, a
// context line with the incident id and link, and, while the incident is
// OPEN or ASSIGNED, the Acknowledge button. Every block id starts with
// "incident:<id>:".
func (m IncidentMessage) Blocks() []slack.Block {
	title := fmt.Sprintf("*%s · %s*", escape(m.Severity), escape(humanize(m.AlertType)))
	if m.Room != "" {
		title += " in room " + escape(m.Room)
	}
	assignee := m.AssigneeName
	if assignee == "" {
		assignee = "unassigned"
	}
	opened := "unknown"
	if !m.OpenedAt.IsZero() {
		opened = fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", m.OpenedAt.Unix(), m.OpenedAt.UTC().Format(time.RFC3339))
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Status*\n" + escape(humanize(m.Status))),
		mrkdwn("*Assignee*\n" + escape(assignee)),
		mrkdwn("*Alerts*\n" + strconv.Itoa(m.AlertCount)),
		mrkdwn("*Opened*\n" + opened),
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(mrkdwn(title), fields, nil, slack.SectionBlockOptionBlockID(blockID(m.IncidentID, "summary"))),
	}
	ctx := "Incident `" + escape(m.IncidentID) + "`"
	if m.Link != "" {
		ctx += " · <" + escapeLink(m.Link) + "|Open in Vigil>"
	}
	blocks = append(blocks, slack.NewContextBlock(blockID(m.IncidentID, "context"), mrkdwn(ctx)))
	if m.ShowAcknowledge() {
		btn := slack.NewButtonBlockElement(ActionAcknowledge, m.IncidentID, slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false))
		btn.Style = slack.StylePrimary
		blocks = append(blocks, slack.NewActionBlock(blockID(m.IncidentID, "actions"), btn))
	}
	return blocks
}

// Attachment is the coloured attachment that holds the blocks.
func (m IncidentMessage) Attachment() slack.Attachment {
	return slack.Attachment{
		Color:    m.Color(),
		Fallback: m.Text(),
		Blocks:   slack.Blocks{BlockSet: m.Blocks()},
	}
}

// Metadata is the message metadata that lets a retried post find the
// message in the channel's history.
func (m IncidentMessage) Metadata() slack.SlackMetadata {
	return slack.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{"incident_id": m.IncidentID}}
}

func (m IncidentMessage) options() []slack.MsgOption {
	return []slack.MsgOption{
		slack.MsgOptionText(m.Text(), false),
		slack.MsgOptionAttachments(m.Attachment()),
		slack.MsgOptionMetadata(m.Metadata()),
	}
}

// blockID names one of an incident message's blocks.
func blockID(incidentID, part string) string {
	return "incident:" + incidentID + ":" + part
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// escape makes text safe inside mrkdwn: Slack treats &, < and > as control
// characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// escapeLink keeps a URL from breaking out of <url|label>.
func escapeLink(s string) string {
	return strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C").Replace(s)
}

// humanize turns CARDIAC_ARREST into "Cardiac arrest".
func humanize(code string) string {
	if code == "" {
		return ""
	}
	s := strings.ToLower(strings.ReplaceAll(code, "_", " "))
	return strings.ToUpper(s[:1]) + s[1:]
}
