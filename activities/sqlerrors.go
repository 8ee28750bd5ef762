package activities

import (
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/database"
)

// ErrTypeInvalidData marks a write Postgres refused for its data (SQLSTATE
// class 22, e.g. a NUL byte in text): retrying cannot help, so the workflow
// learns at once instead of after an hour of retries.
const ErrTypeInvalidData = "InvalidData"

// classifySQL turns a data error into a non-retryable application error and
// leaves every other error (connection, deadlock, timeout) retryable.
func classifySQL(err error) error {
	if msg, ok := database.DataError(err); ok {
		return temporal.NewNonRetryableApplicationError("postgres refused the data: "+msg, ErrTypeInvalidData, err)
	}
	return err
}
