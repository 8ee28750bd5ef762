// Package activities holds Vigil's Temporal activities: every piece of work
// that touches the world (Postgres, sources, Slack, SMTP, SMS). Activities are
// methods on structs grouped by the dependency they use, registered once per
// worker and referenced from workflows through a nil pointer of that struct.
//
// Activities run at least once, so each one is idempotent: inserts are keyed
// by business ids with ON CONFLICT, and notifications go through an outbox.
package activities
