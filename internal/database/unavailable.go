package database

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"
)

// IsUnavailable reports whether err means Postgres could not be reached or
// refused to serve (connection refused or lost, the database not accepting
// connections, shutting down or out of connection slots), as opposed to a
// query that failed. Callers answer such errors with 503 and Retry-After.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "08", // connection exception
			"53": // insufficient resources (too many connections)
			return true
		}
		switch pqErr.Code {
		case "57P01", "57P02", "57P03", // admin/crash shutdown, cannot connect now
			"55000": // object not in prerequisite state (e.g. database does not allow connections)
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr)
}

// DataError returns Postgres's message when err is a statement Postgres
// refused for its data (SQLSTATE class 22, e.g. a NUL byte in text):
// retrying it cannot help.
func DataError(err error) (string, bool) {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code.Class() == "22" {
		return pqErr.Message, true
	}
	return "", false
}
