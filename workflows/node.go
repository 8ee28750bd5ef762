package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// Limits of a node's monitor.
const (
	// maxObservationsPerRun continues a node's monitor as new long before
	// its history grows large (an observation is about 10 events).
	maxObservationsPerRun = 500
	// recentScans is how many scan ids a monitor remembers to ignore
	// repeated observations of a retried scan.
	recentScans = 8
	// nodeStaleAfter holds reminders back while the node has not been
	// observed for this long (the broker or the scan is down): the
	// condition may have cleared unseen. A reminder that fell due meanwhile
	// goes out with the next observation that still has the condition.
	nodeStaleAfter = 24 * time.Hour
	week           = 7 * 24 * time.Hour
)

// NodeMonitor is one broker node's durable monitor (workflow id
// node:<id>). Fleet scans store an observation each in Postgres and signal
// it the reference; it has the observation recorded and evaluated
// (RecordNodeObservation, which reads it by the reference), keeps the
// NodeStatus search attribute on the headline, and runs the e-mail rules
// for every mailed condition:
//   - a condition becoming active is mailed at once ("alert");
//   - while it stays active a durable timer re-sends it ("reminder") the
//     node's notification interval after the last mail;
//   - when it clears, a "recovered" mail goes to those told, and the next
//     occurrence is mailed at once again.
//
// Each mail has an idempotency key node:<id>:<condition>:<episode>:<seq>;
// a mail that found no recipients is retried under the same key with the
// next observation, so contacts added later are told.
//
// An operator can have the node scanned now with the rescan signal
// (payload OperatorSignal). The run keeps the NodeName search attribute on
// the node's name and shows its status, last import, last observation,
// last mail and next reminder as current details in the Web UI.
func NodeMonitor(ctx workflow.Context, in *NodeMonitorInput) error {
	return setUpAndRun(ctx, &nodeMonitor{in: in})
}

type nodeMonitor struct {
	in *NodeMonitorInput
	st NodeMonitorState
	// observations counts this run's observations.
	observations int
	timer        workflow.Future
	timerDue     time.Time
	cancelTimer  workflow.CancelFunc
	// rescans counts this run's rescans (for their scan ids).
	rescans int
	ops     operatorLog
}

// nodeNameChange versions keeping the NodeName search attribute on the
// node's name.
const nodeNameChange = "node-name"

var nodeActivities *activities.Nodes

func (m *nodeMonitor) setup(ctx workflow.Context) error {
	if m.in == nil || m.in.NodeID == "" {
		return temporal.NewNonRetryableApplicationError("node id is required", "InvalidInput", nil)
	}
	if m.in.Carry != nil {
		m.st = *m.in.Carry
	}
	m.st.NodeID = m.in.NodeID
	// One entry per mailed condition, in the fixed order; carried entries
	// keep their state.
	mails := make([]NodeMailState, 0, len(nodehealth.MailConditions))
	for _, c := range nodehealth.MailConditions {
		s := NodeMailState{Condition: string(c)}
		if i := slices.IndexFunc(m.st.Mails, func(x NodeMailState) bool { return x.Condition == string(c) }); i >= 0 {
			s = m.st.Mails[i]
		}
		mails = append(mails, s)
	}
	m.st.Mails = mails
	if err := workflow.SetQueryHandlerWithOptions(ctx, NodeQueryStatus, func() (NodeMonitorState, error) { return m.st, nil },
		workflow.QueryHandlerOptions{Description: "The node's monitor state: latest evaluation, headline, every mailed condition's e-mail state, recent scans."}); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	// A scan starts the workflow with its kind and node id; a run started
	// otherwise (a test, an operator) gets them here, and a continued run
	// its carried headline if it lost it.
	attrs := workflow.GetTypedSearchAttributes(ctx)
	if name, ok := attrs.GetString(NodeNameKey); ok && m.st.Name == "" {
		m.st.Name = name
	}
	var updates []temporal.SearchAttributeUpdate
	if _, ok := attrs.GetKeyword(NodeIDKey); !ok {
		updates = append(updates, VigilKindKey.ValueSet(KindNode), NodeIDKey.ValueSet(m.in.NodeID))
	}
	if status, _ := attrs.GetKeyword(NodeStatusKey); m.st.Headline != "" && status != m.st.Headline {
		updates = append(updates, NodeStatusKey.ValueSet(m.st.Headline))
	}
	if len(updates) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
			return fmt.Errorf("upsert search attributes: %w", err)
		}
	}
	return nil
}

func (m *nodeMonitor) run(ctx workflow.Context) error {
	ch := workflow.GetSignalChannelWithOptions(ctx, SignalNodeObservation, workflow.SignalChannelOptions{
		Description: "A fleet scan's observation of the node (a reference to its row in node_observations), recorded and evaluated at once."})
	rescanCh := workflow.GetSignalChannelWithOptions(ctx, NodeSignalRescan, workflow.SignalChannelOptions{
		Description: `Operator rescan: fetch the node from the broker now and evaluate it. Payload {"operator":"<name>","reason":"<text>"}; a refused or failed rescan is recorded with its reason.`})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if m.shouldContinueAsNew(ctx) {
			return m.continueAsNew(ctx, ch, rescanCh)
		}
		now := workflow.Now(ctx)
		due := m.nextDue()
		if !due.IsZero() && !due.After(now) {
			if m.fresh(now) {
				m.remind(ctx, now)
				continue
			}
			due = time.Time{} // wait for the next observation
		}
		m.armTimer(ctx, due)
		m.details(ctx)

		var obs *NodeObservationRef
		var rescan *converter.RawValue
		fired, cancelled := false, false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { cancelled = true })
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var o NodeObservationRef
			c.Receive(ctx, &o)
			obs = &o
		})
		sel.AddReceive(rescanCh, func(c workflow.ReceiveChannel, _ bool) {
			var raw converter.RawValue
			c.Receive(ctx, &raw)
			rescan = &raw
		})
		if m.timer != nil {
			sel.AddFuture(m.timer, func(workflow.Future) { fired = true })
		}
		sel.Select(ctx)
		if cancelled {
			// An operator cancelled the monitor (say, the node left the
			// broker); a later scan starts it afresh.
			return ctx.Err()
		}
		if fired {
			// The loop's next pass finds the reminder due.
			m.timer, m.timerDue, m.cancelTimer = nil, time.Time{}, nil
		}
		if obs != nil {
			m.observe(ctx, *obs)
		}
		if rescan != nil {
			m.rescan(ctx, *rescan)
		}
	}
}

// rescan has the node fetched now (RescanNode) at an operator's signal and
// records and evaluates the observation like a scan's. A refused signal
// (bad payload) or a failed rescan is logged, shown in the current details
// and recorded in operator_signals.
func (m *nodeMonitor) rescan(ctx workflow.Context, raw converter.RawValue) {
	id := m.in.NodeID
	sig, err := DecodeOperatorSignal(raw)
	if err != nil {
		m.ops.refuse(ctx, KindNode, id, NodeSignalRescan, sig, activities.OperatorSignalRefused, err)
		return
	}
	m.rescans++
	info := workflow.GetInfo(ctx)
	in := &activities.RescanNodeInput{
		NodeID: id, ScanID: "rescan-" + info.WorkflowExecution.RunID + "-" + strconv.Itoa(m.rescans),
		Signal: m.ops.record(ctx, KindNode, id, NodeSignalRescan, sig, activities.OperatorSignalAccepted, nil),
	}
	workflow.GetLogger(ctx).Info("node rescan by operator signal", "actor", sig.Actor(), "scan", in.ScanID)
	var ref NodeObservationRef
	actx := withSummary(rescanCtx(ctx), "rescan node "+id+" for "+sig.Actor())
	if err := workflow.ExecuteActivity(actx, nodeActivities.RescanNode, in).Get(ctx, &ref); err != nil {
		why := "the broker could not be reached"
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && ae.Message() != "" {
			why = ae.Message()
		}
		m.ops.refuse(ctx, KindNode, id, NodeSignalRescan, sig, activities.OperatorSignalFailed, errors.New("the rescan failed: "+why))
		return
	}
	m.ops.accepted(ctx, "rescan ("+in.ScanID+")", sig)
	m.observe(ctx, ref)
}

// details sets the run's current details in the Web UI: the node, its
// status, last import and contact, last observation, last mail, next
// reminder and last operator signal.
func (m *nodeMonitor) details(ctx workflow.Context) {
	lines := []string{NodeSummary(m.in.NodeID, m.st.Name)}
	if ev := m.st.Last; ev != nil {
		status := ev.Headline
		if len(ev.Conditions) > 1 || (len(ev.Conditions) == 1 && ev.Conditions[0] != ev.Headline) {
			status += " (" + strings.Join(ev.Conditions, ", ") + ")"
		}
		lines = append(lines, "Status: "+status)
		if t := ev.Facts.LastWrite; t != nil {
			lines = append(lines, "Last import: "+clock(*t))
		}
		if t := ev.Facts.LastContact; t != nil {
			lines = append(lines, "Last contact: "+clock(*t))
		}
	} else {
		lines = append(lines, "Status: not evaluated yet")
	}
	if n := len(m.st.RecentScans); n > 0 {
		lines = append(lines, fmt.Sprintf("Last observation: %s (%s)", clock(m.st.LastObservedAt), m.st.RecentScans[n-1]))
	}
	if m.st.LastMail != "" {
		lines = append(lines, "Last mail: "+m.st.LastMail)
	}
	if !m.timerDue.IsZero() {
		lines = append(lines, "Next reminder: "+clock(m.timerDue))
	}
	lines = append(lines, m.ops.lines()...)
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
}

// syncName keeps the NodeName search attribute on name (runs from before
// names were kept only note it).
func (m *nodeMonitor) syncName(ctx workflow.Context, name string) {
	if name == "" || name == m.st.Name {
		return
	}
	m.st.Name = name
	if current, _ := workflow.GetTypedSearchAttributes(ctx).GetString(NodeNameKey); current == name {
		return
	}
	if workflow.GetVersion(ctx, nodeNameChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, NodeNameKey.ValueSet(name)); err != nil {
		workflow.GetLogger(ctx).Warn("node name search attribute not updated", "err", err)
	}
}

// armTimer makes the pending timer fire at due (zero: no timer), keeping
// the current one when it already does.
func (m *nodeMonitor) armTimer(ctx workflow.Context, due time.Time) {
	if m.timer != nil && due.Equal(m.timerDue) {
		return
	}
	if m.cancelTimer != nil {
		m.cancelTimer()
	}
	m.timer, m.timerDue, m.cancelTimer = nil, time.Time{}, nil
	if due.IsZero() {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	wait := due.Sub(workflow.Now(ctx))
	summary := "re-notify node " + m.in.NodeID + " contacts"
	if conds := m.dueConditions(due); len(conds) > 0 {
		summary += " (" + strings.Join(conds, ", ") + ")"
	}
	m.timer = workflow.NewTimerWithOptions(tctx, wait, workflow.TimerOptions{Summary: summary + " in " + HumanDuration(wait)})
	m.timerDue, m.cancelTimer = due, cancel
}

// dueConditions are the conditions whose reminder falls due at due.
func (m *nodeMonitor) dueConditions(due time.Time) []string {
	var out []string
	every := m.interval()
	for _, s := range m.st.Mails {
		if s.Active && s.Pending == "" && !s.LastSent.IsZero() && s.LastSent.Add(every).Equal(due) {
			out = append(out, s.Condition)
		}
	}
	return out
}

// observe has one observation recorded and evaluated and runs the mail
// rules. A failed recording is logged and skipped: the next scan comes
// soon.
func (m *nodeMonitor) observe(ctx workflow.Context, obs NodeObservationRef) {
	logger := workflow.GetLogger(ctx)
	if obs.ScanID == "" {
		// Nothing to read the observation by.
		logger.Warn("observation without a scan id ignored")
		return
	}
	if slices.Contains(m.st.RecentScans, obs.ScanID) {
		logger.Info("repeated observation ignored", "scan", obs.ScanID)
		return
	}
	m.st.RecentScans = append(m.st.RecentScans, obs.ScanID)
	if n := len(m.st.RecentScans); n > recentScans {
		m.st.RecentScans = slices.Clone(m.st.RecentScans[n-recentScans:])
	}
	m.observations++
	m.st.Observations++
	obs.NodeID = m.in.NodeID
	if obs.ObservedAt.IsZero() {
		obs.ObservedAt = workflow.Now(ctx)
	}
	var ev NodeEvaluation
	actx := withSummary(nodeDBCtx(ctx), "record observation "+obs.ScanID)
	if err := workflow.ExecuteActivity(actx, nodeActivities.RecordNodeObservation, &obs).Get(ctx, &ev); err != nil {
		logger.Warn("node observation not recorded", "scan", obs.ScanID, "err", err)
		return
	}
	m.st.Last = &ev
	m.st.LastObservedAt = obs.ObservedAt
	m.syncName(ctx, ev.Name)
	if ev.Headline != m.st.Headline {
		m.st.Headline = ev.Headline
		if err := workflow.UpsertTypedSearchAttributes(ctx, NodeStatusKey.ValueSet(ev.Headline)); err != nil {
			logger.Warn("node status search attribute not updated", "err", err)
		}
	}
	now := workflow.Now(ctx)
	for i := range m.st.Mails {
		s := &m.st.Mails[i]
		active := slices.Contains(ev.Conditions, s.Condition)
		switch {
		case active && !s.Active:
			s.Active, s.Episodes, s.Seq = true, s.Episodes+1, 0
			s.Since, s.LastSent, s.Told = now, time.Time{}, false
			s.Pending = node.MailAlert
		case !active && s.Active:
			s.Active = false
			s.Pending = ""
			if s.Told {
				s.Pending = node.MailRecovered
			}
		}
	}
	m.sendPending(ctx)
}

// remind queues a reminder for every condition whose interval is up.
func (m *nodeMonitor) remind(ctx workflow.Context, now time.Time) {
	every := m.interval()
	for i := range m.st.Mails {
		s := &m.st.Mails[i]
		if s.Active && s.Pending == "" && !s.LastSent.IsZero() && !now.Before(s.LastSent.Add(every)) {
			s.Pending = node.MailReminder
		}
	}
	m.sendPending(ctx)
}

// sendPending sends every pending mail, one at a time in condition order.
func (m *nodeMonitor) sendPending(ctx workflow.Context) {
	for i := range m.st.Mails {
		if m.st.Mails[i].Pending != "" {
			m.send(ctx, &m.st.Mails[i])
		}
	}
}

func (m *nodeMonitor) send(ctx workflow.Context, s *NodeMailState) {
	logger := workflow.GetLogger(ctx)
	req := &node.MailRequest{
		Key:    NodeMailKey(m.in.NodeID, s.Condition, s.Episodes, s.Seq),
		NodeID: m.in.NodeID, Condition: s.Condition, Kind: s.Pending, Since: s.Since,
	}
	if ev := m.st.Last; ev != nil {
		req.Facts = ev.Facts
	}
	var res node.MailResult
	actx := withSummary(nodeMailCtx(ctx), "mail "+s.Condition+" "+s.Pending+" to node "+m.in.NodeID+" contacts")
	err := workflow.ExecuteActivity(actx, nodeActivities.SendNodeMail, req).Get(ctx, &res)
	now := workflow.Now(ctx)
	kind := s.Pending
	defer func() { m.st.LastMail = fmt.Sprintf("%s %s at %s: %s", s.Condition, kind, clock(now), s.LastResult) }()
	switch {
	case err != nil && !isPermanentMailError(err):
		// Out of time (SMTP down for long): the same mail is tried again
		// with the next observation.
		s.LastResult = "failed"
		logger.Warn("node mail not sent; retried with the next observation", "key", req.Key, "err", err)
		return
	case err != nil:
		// Retrying cannot help (a refused address, no SMTP): given up,
		// counted as sent for the cadence, so the next reminder is the
		// next attempt.
		s.LastResult = "failed"
		logger.Error("node mail failed permanently", "key", req.Key, "err", err)
	case res.Status == node.MailNoRecipients:
		s.LastResult = res.Status
		// The activity warns once per mail; this repeats with every scan.
		logger.Debug("node mail has no recipients; retried with the next observation", "key", req.Key)
		return
	default:
		s.LastResult = res.Status
		s.Told = true
	}
	s.Seq++
	s.Pending = ""
	if kind == node.MailRecovered {
		s.LastSent, s.Told = time.Time{}, false
		return
	}
	s.LastSent = now
}

// NodeMailKey is the idempotency key of one node mail.
func NodeMailKey(nodeID, condition string, episode, seq int) string {
	return fmt.Sprintf("node:%s:%s:%d:%d", nodeID, condition, episode, seq)
}

func isPermanentMailError(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == activities.ErrTypeMailPermanent
}

// nextDue is when the earliest reminder is due; zero when none is.
func (m *nodeMonitor) nextDue() time.Time {
	var due time.Time
	every := m.interval()
	for _, s := range m.st.Mails {
		if !s.Active || s.Pending != "" || s.LastSent.IsZero() {
			continue
		}
		if d := s.LastSent.Add(every); due.IsZero() || d.Before(due) {
			due = d
		}
	}
	return due
}

// interval is the node's notification interval (one week by default).
func (m *nodeMonitor) interval() time.Duration {
	if m.st.Last != nil && m.st.Last.IntervalWeeks > 0 {
		return time.Duration(m.st.Last.IntervalWeeks) * week
	}
	return week
}

// fresh reports whether the node was observed recently enough for its
// last evaluation to be trusted for a reminder.
func (m *nodeMonitor) fresh(now time.Time) bool {
	return !m.st.LastObservedAt.IsZero() && now.Sub(m.st.LastObservedAt) <= nodeStaleAfter
}

func (m *nodeMonitor) shouldContinueAsNew(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, m.observations, m.in.ContinueAsNewAfter, maxObservationsPerRun)
}

// continueAsNew processes the observations and rescans already delivered,
// so none is lost, and continues with the state.
func (m *nodeMonitor) continueAsNew(ctx workflow.Context, ch, rescanCh workflow.ReceiveChannel) error {
	for {
		var o NodeObservationRef
		if !ch.ReceiveAsync(&o) {
			break
		}
		m.observe(ctx, o)
	}
	for {
		var raw converter.RawValue
		if !rescanCh.ReceiveAsync(&raw) {
			break
		}
		m.rescan(ctx, raw)
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	carry := m.st
	return workflow.NewContinueAsNewError(ctx, NodeMonitor, &NodeMonitorInput{
		NodeID: m.in.NodeID, Carry: &carry, ContinueAsNewAfter: m.in.ContinueAsNewAfter,
	})
}

// nodeDBCtx records an observation: one Postgres transaction, retried for
// up to ten minutes (the next scan brings a newer observation anyway).
func nodeDBCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            doublingRetry(time.Second, time.Minute, activities.ErrTypeInvalidData, activities.ErrTypeInvalidInput),
	})
}

// rescanCtx fetches one node for an operator: six broker requests (10 s
// client timeouts each), retried briefly; a refused admin key or a worker
// without a broker fails at once.
func rescanCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy: doublingRetry(5*time.Second, time.Minute,
			activities.ErrTypeBrokerAuth, activities.ErrTypeNoBroker, activities.ErrTypeInvalidInput),
	})
}

// nodeMailCtx sends a node mail: transient SMTP failures are retried with
// backoff from 10 s up to 10 minutes apart for two hours (observations wait
// meanwhile; none is lost), so an SMTP server that is back gets the mail
// within seconds of a short outage; permanent ones fail at once.
func nodeMailCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 2 * time.Hour,
		RetryPolicy:            doublingRetry(10*time.Second, 10*time.Minute, activities.ErrTypeMailPermanent, activities.ErrTypeInvalidInput),
	})
}
