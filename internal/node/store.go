package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Store reads and writes the node monitoring tables.
type Store struct {
	// DB is the Vigil database.
	DB *sqlx.DB
}

// DataError is a write Postgres refused for its data (SQLSTATE class 22,
// e.g. a NUL byte in text): retrying cannot help.
type DataError struct {
	// Detail is Postgres' message.
	Detail string
	Err    error
}

func (e *DataError) Error() string { return e.Err.Error() }
func (e *DataError) Unwrap() error { return e.Err }

// dataError wraps err in a *DataError when Postgres refused the data, and
// returns every other error (connection, deadlock, timeout) as it is.
func dataError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code.Class() == "22" {
		return &DataError{Detail: pqErr.Message, Err: err}
	}
	return err
}

// ObservationError is an observation that cannot be recorded however often
// it is retried: not stored (any more), undecodable (Err is set) or without
// a time.
type ObservationError struct {
	Message string
	// Err is the decoding error of an undecodable observation; nil
	// otherwise.
	Err error
}

func (e *ObservationError) Error() string { return e.Message }
func (e *ObservationError) Unwrap() error { return e.Err }

// ErrIncompleteObservation is an observation without scan id, node id or
// time: it cannot be stored.
var ErrIncompleteObservation = errors.New("scan id, node id and observation time are required")

// SaveObservation stores obs in node_observations under its scan and node
// ids, replacing the row an earlier attempt of the same scan wrote, and
// returns its reference. NUL characters are dropped from its text (jsonb
// cannot hold them; recording drops them anyway).
func (s *Store) SaveObservation(ctx context.Context, obs *Observation) (*ObservationRef, error) {
	if obs == nil || obs.ScanID == "" || obs.Node.ID == "" || obs.ObservedAt.IsZero() {
		return nil, ErrIncompleteObservation
	}
	payload, err := json.Marshal(obs)
	if err != nil {
		return nil, fmt.Errorf("encode observation of node %s: %w", obs.Node.ID, err)
	}
	ref := &ObservationRef{ScanID: obs.ScanID, NodeID: obs.Node.ID, ObservedAt: obs.ObservedAt.UTC()}
	if _, err := s.DB.ExecContext(ctx, `INSERT INTO node_observations (scan_id, node_id, observed_at, payload)
		VALUES ($1, $2, $3, $4::jsonb)
		ON CONFLICT (scan_id, node_id) DO UPDATE SET observed_at = EXCLUDED.observed_at, payload = EXCLUDED.payload`,
		ref.ScanID, ref.NodeID, ref.ObservedAt, string(dropJSONNul(payload))); err != nil {
		return nil, dataError(fmt.Errorf("store observation of node %s: %w", ref.NodeID, err))
	}
	return ref, nil
}

// dropJSONNul removes the \u0000 escapes from encoded JSON (Postgres jsonb
// refuses them). A backslash outside strings cannot occur, so every one
// starts an escape.
func dropJSONNul(b []byte) []byte {
	const nul = `\u0000`
	if !bytes.Contains(b, []byte(nul)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], []byte(nul)) {
			i += len(nul) - 1
			continue
		}
		if i+1 < len(b) {
			out = append(out, b[i], b[i+1])
			i++
		}
	}
	return out
}

// PruneObservations deletes the observations made before cutoff (of every
// node, also those the broker no longer lists) and returns how many.
func (s *Store) PruneObservations(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM node_observations WHERE observed_at < $1`, cutoff.UTC())
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// StartScan records the start of a fleet scan (requestedBy "") or of an
// operator's rescan in broker_scans; a retried start changes nothing.
func (s *Store) StartScan(ctx context.Context, scanID, requestedBy string, at time.Time) error {
	if requestedBy == "" {
		_, err := s.DB.ExecContext(ctx, `INSERT INTO broker_scans (scan_id, started_at) VALUES ($1, $2)
		ON CONFLICT (scan_id) DO NOTHING`, scanID, at)
		return err
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO broker_scans (scan_id, started_at, requested_by) VALUES ($1, $2, $3)
		ON CONFLICT (scan_id) DO NOTHING`, scanID, at, requestedBy)
	return err
}

// FinishScan records the end of a scan: how many nodes it signalled, how
// many of them it could not fetch completely, and its error ("" when it
// succeeded).
func (s *Store) FinishScan(ctx context.Context, scanID string, at time.Time, nodes, failed int, scanErr string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE broker_scans SET finished_at = $2, nodes = $3, failed = $4, error = $5
		WHERE scan_id = $1`, scanID, at, nodes, failed, scanErr)
	return err
}

// CommonNames returns the common names of the nodes that have settings, by
// node id.
func (s *Store) CommonNames(ctx context.Context) (map[string]string, error) {
	var rows []struct {
		NodeID     string `db:"node_id"`
		CommonName string `db:"common_name"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `SELECT node_id, common_name FROM node_settings WHERE common_name <> ''`); err != nil {
		return nil, fmt.Errorf("read node names: %w", err)
	}
	names := make(map[string]string, len(rows))
	for _, r := range rows {
		names[r.NodeID] = r.CommonName
	}
	return names, nil
}
