// Package incident owns the incident capability's tables: incidents and
// incident_events (the query model the incident workflow projects to
// Postgres), notification_outbox (one row per page sent or to send),
// staff_notifications (the in-app inbox) and the Slack message rows.
//
// Store is the only code that reads or writes these tables. Its read side
// lists incidents with filters and keyset pagination, loads one incident
// with its audit timeline, computes response-time metrics (MTTA, MTTR, time
// to assign, time to first page) and measures the outbox backlog; its write
// side is called by the incident activities and the API handlers. Who is on
// call lives in the oncall subpackage.
package incident

import "github.com/jmoiron/sqlx"

// Store reads and writes the incident tables.
type Store struct {
	// DB is the Vigil database.
	DB *sqlx.DB
}
