package activities

import (
	"errors"

	"github.com/lib/pq"
	"go.temporal.io/sdk/temporal"
)

// ErrTypeInvalidData marks a write Postgres refused for its data (SQLSTATE
// class 22, e.g. a NUL byte in text): retrying cannot help, so the workflow
// learns at once instead of after an hour of retries.
const ErrTypeInvalidData = "InvalidData"

// classifySQL turns a data error into a non-retryable application error and
// leaves every other error (connection, deadlock, timeout) retryable.
func classifySQL(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code.Class() == "22" {
		return temporal.NewNonRetryableApplicationError("postgres refused the data: "+pqErr.Message, ErrTypeInvalidData, err)
	}
	return err
}
