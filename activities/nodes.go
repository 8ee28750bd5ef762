package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/broker"
)

// BrokerSource is the part of the broker's admin API a fleet scan reads.
// *broker.Client implements it; tests put the simulator behind one.
type BrokerSource interface {
	// Nodes lists every node the broker knows.
	Nodes(ctx context.Context) ([]broker.Node, error)
	// Node returns one node (its last contact and client DN).
	Node(ctx context.Context, id string) (broker.Node, error)
	// Stats returns the node's import statistics; nil, nil when it has
	// published none.
	Stats(ctx context.Context, id string) (*broker.ImportStats, error)
	// Resource returns one properties resource of the node, sorted by key;
	// broker.ErrNotFound when the node has not published it.
	Resource(ctx context.Context, id, name string) ([]broker.Property, error)
}

var _ BrokerSource = (*broker.Client)(nil)

// Search attributes set when a scan starts a node workflow; the names match
// workflows/searchattrs.go.
var (
	vigilKindKey = temporal.NewSearchAttributeKeyKeyword("VigilKind")
	nodeIDKey    = temporal.NewSearchAttributeKeyKeyword("NodeID")
	nodeNameKey  = temporal.NewSearchAttributeKeyString("NodeName")
)

// Error types of the node activities.
const (
	// ErrTypeBrokerAuth is the broker refusing the admin key: retrying
	// cannot help until the configuration is fixed.
	ErrTypeBrokerAuth = "BrokerUnauthorized"
	// ErrTypeNoBroker is a fleet scan on a worker without a broker.
	ErrTypeNoBroker = "NoBroker"
	// ErrTypeMailPermanent is an SMTP failure retrying cannot fix (a
	// refused recipient or sender, bad credentials) or a missing mailer.
	ErrTypeMailPermanent = "MailPermanent"
)

// DefaultBrokerConcurrency is how many nodes a scan fetches at once.
const DefaultBrokerConcurrency = 16

// NodeObservationRetention is how long observations stay in
// node_observations: every fleet scan deletes older ones.
const NodeObservationRetention = 7 * 24 * time.Hour

// Nodes holds the broker node monitoring activities: the fleet scan, the
// recording and evaluation of one node's observation, and its e-mails.
type Nodes struct {
	// Store holds the node tables.
	Store *node.Store
	// Broker is the broker's admin API; nil makes ScanFleet fail
	// (non-retryable) while recording and mail still work.
	Broker BrokerSource
	// Temporal starts and signals node workflows (Signal-With-Start) on
	// TaskQueue.
	Temporal  client.Client
	TaskQueue string
	// CurrentDWHVersion and CurrentI2B2Version are the current releases a
	// node's versions are compared with ("" disables DWH OUTDATED).
	CurrentDWHVersion  string
	CurrentI2B2Version string
	// Concurrency bounds the nodes fetched at once; zero means
	// DefaultBrokerConcurrency.
	Concurrency int
	// Mailer sends the node e-mails; nil records every mail as failed
	// ("no SMTP configured").
	Mailer *mail.Sender
	// MailCC are static addresses copied (CC) on every node e-mail.
	MailCC []string
	// Zone is the zone times in e-mails are shown in; nil means
	// Europe/Berlin.
	Zone *time.Location
	// Metrics, when set, counts scans, node fetches and e-mails.
	Metrics *metrics.NodeMetrics
}

// SaveNodeObservation stores obs in node_observations
// (node.Store.SaveObservation) and returns its reference; an observation
// without scan id, node id or time is a non-retryable error.
func SaveNodeObservation(ctx context.Context, store *node.Store, obs *node.Observation) (*node.ObservationRef, error) {
	ref, err := store.SaveObservation(ctx, obs)
	if errors.Is(err, node.ErrIncompleteObservation) {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, nil)
	}
	if err != nil {
		return nil, nodeStoreError(err)
	}
	return ref, nil
}

// ScanFleetInput starts one fleet scan.
type ScanFleetInput struct {
	// ScanID is unique per scan and stable across the activity's retries.
	ScanID string
}

// ScanFleet lists the broker's nodes, fetches each one (node, statistics
// and every resource of broker.Resources) with bounded concurrency, stores
// its observation in node_observations and signals each node's workflow
// the observation's reference by Signal-With-Start, so a node new to the
// broker gets its workflow on its first scan. Each node is fetched, stored
// and signalled by one of Concurrency workers, independently of the others.
// A scan that succeeded deletes the observations older than
// NodeObservationRetention.
//
// A node whose node entry, statistics or a resource could not be fetched is
// still signalled, with FetchError set: its last contact (from the node
// list) keeps being evaluated, so a node the broker cannot answer for still
// turns OFFLINE in time instead of keeping its last status for ever. The
// scan's row in broker_scans counts nodes and failures. A refused admin key
// is non-retryable; anything else is retried (node workflows ignore the
// repeated observations of a retried scan).
func (a *Nodes) ScanFleet(ctx context.Context, in *ScanFleetInput) (*node.ScanResult, error) {
	if in == nil || in.ScanID == "" {
		return nil, temporal.NewNonRetryableApplicationError("scan id is required", ErrTypeInvalidInput, nil)
	}
	if a.Broker == nil {
		return nil, temporal.NewNonRetryableApplicationError("no broker is configured on this worker", ErrTypeNoBroker, nil)
	}
	if err := a.Store.StartScan(ctx, in.ScanID, "", time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("record scan start: %w", err)
	}
	res, err := a.scan(ctx, in.ScanID)
	msg := ""
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		a.Metrics.Scanned("ok")
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeBrokerAuth:
		a.Metrics.Scanned("unauthorized")
	default:
		a.Metrics.Scanned("error")
	}
	if err != nil {
		msg = err.Error()
	}
	// The scan's row is finished even when the scan failed, so operators
	// see the error; a retry that succeeds overwrites it.
	if dbErr := a.Store.FinishScan(context.WithoutCancel(ctx), in.ScanID, time.Now().UTC(), res.Nodes, res.Failed, msg); dbErr != nil && err == nil {
		err = fmt.Errorf("record scan end: %w", dbErr)
	}
	if err != nil {
		return nil, err
	}
	a.pruneObservations(ctx)
	return &res, nil
}

// pruneObservations deletes the observations older than
// NodeObservationRetention (of every node, also those the broker no longer
// lists). A failure is only logged: the next scan tries again.
func (a *Nodes) pruneObservations(ctx context.Context) {
	n, err := a.Store.PruneObservations(ctx, time.Now().Add(-NodeObservationRetention))
	if err != nil {
		slog.WarnContext(ctx, "old node observations not deleted", "err", err)
		return
	}
	if n > 0 {
		slog.DebugContext(ctx, "old node observations deleted", "rows", n)
	}
}

func (a *Nodes) scan(ctx context.Context, scanID string) (node.ScanResult, error) {
	res := node.ScanResult{ScanID: scanID}
	nodes, err := a.Broker.Nodes(ctx)
	if err != nil {
		return res, brokerError("list nodes", err)
	}
	slices.SortFunc(nodes, func(x, y broker.Node) int { return strings.Compare(x.ID, y.ID) })
	nodes = slices.CompactFunc(nodes, func(x, y broker.Node) bool { return x.ID == y.ID })
	names, err := a.Store.CommonNames(ctx)
	if err != nil {
		return res, err
	}

	workers := a.Concurrency
	if workers <= 0 {
		workers = DefaultBrokerConcurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		failed bool
		err    error
	}
	jobs := make(chan broker.Node)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range min(workers, max(len(nodes), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				obs, err := a.observe(ctx, scanID, n)
				var ref *node.ObservationRef
				if err == nil {
					ref, err = SaveNodeObservation(ctx, a.Store, obs)
				}
				if err == nil {
					err = a.signal(ctx, ref, node.Name(names[n.ID], obs.Node.ClientDN), obs.Node.ClientDN)
				}
				results <- outcome{failed: obs.FetchError != "", err: err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, n := range nodes {
			select {
			case jobs <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var firstErr error
	for o := range results {
		switch {
		case o.err != nil:
			a.Metrics.NodePolled("error")
		case o.failed:
			a.Metrics.NodePolled("partial")
		default:
			a.Metrics.NodePolled("ok")
		}
		if o.err != nil {
			if firstErr == nil {
				firstErr = o.err
				cancel() // stop fetching; the retry starts over
			}
			continue
		}
		res.Nodes++
		if o.failed {
			res.Failed++
		}
		activity.RecordHeartbeat(ctx, res.Nodes)
	}
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("scan: %w", err)
	}
	return res, nil
}

// observe fetches one node. Failures to fetch are recorded on the
// observation; only a refused admin key (or the scan's cancellation) is an
// error.
func (a *Nodes) observe(ctx context.Context, scanID string, listed broker.Node) (*node.Observation, error) {
	obs := &node.Observation{ScanID: scanID, Node: listed}
	var problems []string
	fail := func(what string, err error) error {
		if errors.Is(err, broker.ErrUnauthorized) {
			return brokerError(what, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		problems = append(problems, what+": "+err.Error())
		return nil
	}
	if n, err := a.Broker.Node(ctx, listed.ID); err == nil {
		if n.LastContact == nil {
			n.LastContact = listed.LastContact
		}
		if n.ClientDN == "" {
			n.ClientDN = listed.ClientDN
		}
		n.ID = listed.ID
		obs.Node = n
	} else if err := fail("node", err); err != nil {
		return obs, err
	}
	stats, err := a.Broker.Stats(ctx, listed.ID)
	switch {
	case err == nil:
		obs.Stats = stats
	case errors.Is(err, broker.ErrNotFound):
		// No statistics published: nothing to count.
	default:
		obs.StatsUnknown = true
		if err := fail("stats", err); err != nil {
			return obs, err
		}
	}
	for _, name := range broker.Resources {
		props, err := a.Broker.Resource(ctx, listed.ID, name)
		switch {
		case err == nil:
			props = slices.Clone(props)
			slices.SortStableFunc(props, func(x, y broker.Property) int { return strings.Compare(x.Key, y.Key) })
			obs.Resources = append(obs.Resources, node.Resource{Name: name, Entries: props})
		case errors.Is(err, broker.ErrNotFound):
			obs.Resources = append(obs.Resources, node.Resource{Name: name, Missing: true})
		default:
			if err := fail(name, err); err != nil {
				return obs, err
			}
		}
	}
	obs.FetchError = strings.Join(problems, "; ")
	obs.ObservedAt = time.Now().UTC()
	if obs.FetchError != "" {
		slog.WarnContext(ctx, "broker node partly fetched", "node", listed.ID, "scan", scanID, "err", obs.FetchError)
	}
	return obs, nil
}

// signal delivers the observation's reference to the node's workflow,
// starting it when it is not running: then with its name (a search
// attribute, and in the run's summary for the Web UI).
func (a *Nodes) signal(ctx context.Context, ref *node.ObservationRef, name, clientDN string) error {
	id := ref.NodeID
	attrs := []temporal.SearchAttributeUpdate{vigilKindKey.ValueSet(node.WorkflowKind), nodeIDKey.ValueSet(id)}
	if name != "" {
		attrs = append(attrs, nodeNameKey.ValueSet(name))
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, node.WorkflowID(id), node.SignalObservation, ref,
		client.StartWorkflowOptions{
			ID:                    node.WorkflowID(id),
			TaskQueue:             a.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
			StaticSummary:         node.RunSummary(id, name),
			StaticDetails:         node.RunDetails(id, name, clientDN),
		},
		node.MonitorWorkflow, &node.MonitorStart{NodeID: id})
	if err != nil {
		return fmt.Errorf("signal node %s: %w", id, err)
	}
	return nil
}

// RescanNodeInput is an operator's rescan of one node.
type RescanNodeInput struct {
	NodeID string
	// ScanID is unique per rescan and stable across the activity's
	// retries.
	ScanID string
	// Signal is the rescan signal as the workflow recorded it
	// (operator_signals); its Actor asked for the rescan.
	Signal OperatorSignalRecord
}

// RescanNode fetches one node now, as a fleet scan would, and stores its
// observation; the node's workflow then records it like a scan's. The
// rescan is a broker_scans row of its own (requested_by the operator) and
// its signal is recorded as accepted in operator_signals. A node the broker
// cannot answer for is still observed, with FetchError set.
func (a *Nodes) RescanNode(ctx context.Context, in *RescanNodeInput) (*node.ObservationRef, error) {
	if in == nil || in.NodeID == "" || in.ScanID == "" {
		return nil, temporal.NewNonRetryableApplicationError("node id and scan id are required", ErrTypeInvalidInput, nil)
	}
	if a.Broker == nil {
		return nil, temporal.NewNonRetryableApplicationError("no broker is configured on this worker", ErrTypeNoBroker, nil)
	}
	if err := a.Store.StartScan(ctx, in.ScanID, in.Signal.Actor, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("record rescan start: %w", err)
	}
	obs, err := a.observe(ctx, in.ScanID, broker.Node{ID: in.NodeID})
	var ref *node.ObservationRef
	if err == nil {
		ref, err = SaveNodeObservation(ctx, a.Store, obs)
	}
	nodes, failed, msg := 1, 0, ""
	switch {
	case err != nil:
		nodes, msg = 0, err.Error()
		a.Metrics.NodePolled("error")
	case obs.FetchError != "":
		failed = 1
		a.Metrics.NodePolled("partial")
	default:
		a.Metrics.NodePolled("ok")
	}
	// The rescan's row is finished even when it failed, so operators see
	// the error; a retry that succeeds overwrites it.
	if dbErr := a.Store.FinishScan(context.WithoutCancel(ctx), in.ScanID, time.Now().UTC(), nodes, failed, msg); dbErr != nil && err == nil {
		err = fmt.Errorf("record rescan end: %w", dbErr)
	}
	if err != nil {
		return nil, err
	}
	rec := in.Signal
	rec.Outcome = OperatorSignalAccepted
	if err := recordOperatorSignal(ctx, a.Store.DB, &rec); err != nil {
		return nil, err
	}
	return ref, nil
}

func brokerError(what string, err error) error {
	if errors.Is(err, broker.ErrUnauthorized) {
		return temporal.NewNonRetryableApplicationError("the broker refused the admin key", ErrTypeBrokerAuth, err)
	}
	return fmt.Errorf("broker %s: %w", what, err)
}

// RecordNodeObservation records one observation of a node and evaluates
// it, in one transaction (node.Store.RecordObservation). A missing,
// undecodable or undated observation is a non-retryable error.
func (a *Nodes) RecordNodeObservation(ctx context.Context, ref *node.ObservationRef) (*node.Evaluation, error) {
	if ref == nil || ref.ScanID == "" || ref.NodeID == "" {
		return nil, temporal.NewNonRetryableApplicationError("scan id and node id are required", ErrTypeInvalidInput, nil)
	}
	ev, err := a.Store.RecordObservation(ctx, ref, a.CurrentDWHVersion)
	if err != nil {
		return nil, nodeStoreError(err)
	}
	return ev, nil
}

// nodeStoreError turns the node store's errors that retrying cannot fix
// into non-retryable application errors: refused data (ErrTypeInvalidData),
// an undecodable observation (ErrTypeInvalidData) and a missing or undated
// one (ErrTypeInvalidInput). Every other error stays retryable.
func nodeStoreError(err error) error {
	var oe *node.ObservationError
	if errors.As(err, &oe) {
		if oe.Err != nil {
			return temporal.NewNonRetryableApplicationError(oe.Message, ErrTypeInvalidData, oe.Err)
		}
		return temporal.NewNonRetryableApplicationError(oe.Message, ErrTypeInvalidInput, nil)
	}
	var de *node.DataError
	if errors.As(err, &de) {
		return temporal.NewNonRetryableApplicationError("postgres refused the data: "+de.Detail, ErrTypeInvalidData, err)
	}
	return err
}
