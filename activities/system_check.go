package activities

import (
	"context"

	"github.com/vigil-health/vigil/internal/systemcheck"
)

// Database holds the system check's activity, which writes its row through
// the system check store.
type Database struct {
	Store *systemcheck.Store
	// Identity names this worker process (pid@host) in the rows it writes.
	Identity string
}

// RecordSystemCheck writes the check's row. A retry after a lost reply finds
// the row already there and returns it unchanged.
func (d *Database) RecordSystemCheck(ctx context.Context, in *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
	out, err := d.Store.Record(ctx, in, d.Identity)
	if err != nil {
		return nil, classifySQL(err)
	}
	return out, nil
}
