package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/cleantext"
)

// Operator signals are how an operator acts on a run from the Temporal Web
// UI or CLI (watch pause and resume, node rescan). Every one carries the
// same JSON payload:
//
//	{"operator": "alice", "reason": "directory maintenance until 14:00"}
//
// operator is 1 to 64 letters, digits or . - _ @ (who the operator is, for
// the record: the change is recorded as made by "operator:alice", never by a
// staff member); reason is optional text of at most 500 characters. A
// signal cannot answer, so a refused one (a bad payload, or a change the
// run's state does not allow) is logged, shown in the run's current
// details and recorded in operator_signals with its reason.
//
// The incident's signals (acknowledge, resolve, note) take notes instead of
// a reason: {"operator": "alice", "notes": "Sensor reseated."}.
type OperatorSignal struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason,omitempty"`
	// Notes are an incident's resolution notes (resolve, 10 to 2000
	// characters) or note (note, 1 to 2000).
	Notes string `json:"notes,omitempty"`
}

// Limits of an operator signal.
const (
	MaxOperatorNameLength   = 64
	MaxOperatorReasonLength = 500
)

var operatorNamePattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ValidOperatorName reports whether name is 1 to 64 letters, digits or
// . - _ @.
func ValidOperatorName(name string) bool { return operatorNamePattern.MatchString(name) }

// Actor is how the signal's change is recorded: "operator:<name>".
func (s OperatorSignal) Actor() string { return "operator:" + s.Operator }

// Validate checks the operator name and the reason.
func (s OperatorSignal) Validate() error {
	switch {
	case s.Operator == "":
		return errors.New(`the payload names no operator: send {"operator":"<name>","reason":"<text>"}`)
	case !ValidOperatorName(s.Operator):
		return fmt.Errorf("the operator name must be 1 to %d letters, digits or . - _ @", MaxOperatorNameLength)
	case !cleantext.Valid(s.Reason, "") || utf8.RuneCountInString(s.Reason) > MaxOperatorReasonLength:
		return fmt.Errorf("the reason must be at most %d characters of text without control characters", MaxOperatorReasonLength)
	}
	return nil
}

// DecodeOperatorSignal decodes and validates an operator signal's payload.
// On error the signal it returns holds only what is safe to record: the
// operator name when it is valid, the reason when it is valid text.
func DecodeOperatorSignal(raw converter.RawValue) (OperatorSignal, error) {
	p := raw.Payload()
	if p == nil {
		return OperatorSignal{}, errors.New(`the signal has no payload: send {"operator":"<name>","reason":"<text>"}`)
	}
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != converter.MetadataEncodingJSON {
		return OperatorSignal{}, fmt.Errorf("the payload must be JSON, not %q", enc)
	}
	var s OperatorSignal
	dec := json.NewDecoder(bytes.NewReader(p.GetData()))
	dec.DisallowUnknownFields()
	// Decoding JSON into a struct is deterministic; workflowcheck flags the
	// reflection it uses.
	//workflowcheck:ignore
	decodeErr := dec.Decode(&s)
	if decodeErr != nil || dec.More() {
		return OperatorSignal{}, errors.New(`the payload must be a JSON object {"operator":"<name>","reason":"<text>"}`)
	}
	err := s.Validate()
	if err != nil {
		if !ValidOperatorName(s.Operator) {
			s.Operator = ""
		}
		if !cleantext.Valid(s.Reason, "") || utf8.RuneCountInString(s.Reason) > MaxOperatorReasonLength {
			s.Reason = ""
		}
	}
	return s, err
}

// operatorLog counts a run's operator signals (for their event keys) and
// remembers the last handled and the last refused one for the run's
// current details.
type operatorLog struct {
	seq      int
	last     string
	refusal  string
	refusals int
}

// record builds the operator_signals row of one signal of this run.
func (l *operatorLog) record(ctx workflow.Context, kind, subjectID, signal string, sig OperatorSignal, outcome string, refusal error) activities.OperatorSignalRecord {
	l.seq++
	info := workflow.GetInfo(ctx)
	rec := activities.OperatorSignalRecord{
		EventKey:   info.WorkflowExecution.ID + ":" + info.WorkflowExecution.RunID + ":signal:" + strconv.Itoa(l.seq),
		WorkflowID: info.WorkflowExecution.ID, Kind: kind, SubjectID: subjectID, Signal: signal,
		Reason: sig.Reason, Outcome: outcome, At: workflow.Now(ctx),
	}
	if sig.Operator != "" {
		rec.Actor = sig.Actor()
	}
	if refusal != nil {
		rec.Refusal = refusal.Error()
	}
	return rec
}

// accepted notes an accepted signal for the current details.
func (l *operatorLog) accepted(ctx workflow.Context, what string, sig OperatorSignal) {
	l.last = what + " by " + sig.Actor() + " at " + clock(workflow.Now(ctx))
}

// refuse logs a refused signal, notes it for the current details and
// records it (a failed write is only logged: the log has it).
func (l *operatorLog) refuse(ctx workflow.Context, kind, subjectID, signal string, sig OperatorSignal, outcome string, why error) {
	l.refusals++
	who := "an unnamed operator"
	if sig.Operator != "" {
		who = sig.Actor()
	}
	l.refusal = fmt.Sprintf("%s from %s at %s: %s", signal, who, clock(workflow.Now(ctx)), why)
	logger := workflow.GetLogger(ctx)
	logger.Warn("operator signal "+outcome, "signal", signal, "actor", who, "reason", why.Error())
	rec := l.record(ctx, kind, subjectID, signal, sig, outcome, why)
	ctx = withSummary(dbCtx(ctx), "record "+outcome+" signal "+signal)
	var ops *activities.Operators
	if err := workflow.ExecuteActivity(ctx, ops.RecordOperatorSignal, &rec).Get(ctx, nil); err != nil {
		logger.Error("operator signal not recorded", "signal", signal, "err", err)
	}
}

// lines are the operator part of a run's current details.
func (l *operatorLog) lines() []string {
	var out []string
	if l.last != "" {
		out = append(out, "Last operator signal: "+l.last)
	}
	if l.refusal != "" {
		out = append(out, "Last refused signal: "+l.refusal)
	}
	return out
}

// withSummary gives the activities scheduled with ctx a summary for the Web
// UI (metadata only: the commands stay the same).
func withSummary(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}

// clock formats a time for details and summaries, in UTC to the minute.
func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// HumanDuration formats d in at most two adjacent units, rounded to the
// smaller one: "7d", "6d 23h", "5m 12s", "45s".
func HumanDuration(d time.Duration) string {
	units := [...]struct {
		name string
		size time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	for i, u := range units {
		if d >= u.size {
			d = d.Round(units[min(i+1, len(units)-1)].size)
			break
		}
	}
	if d < time.Second {
		return "0s"
	}
	var parts []string
	for _, u := range units {
		n := d / u.size
		switch {
		case n > 0:
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.name)
			d -= n * u.size
		case len(parts) > 0:
			return strings.Join(parts, " ")
		}
		if len(parts) == 2 {
			break
		}
	}
	return strings.Join(parts, " ")
}
