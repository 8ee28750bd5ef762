// Package chaos is Vigil's fault-injection suite (`make chaos`; a short
// version runs in `make test`). It builds the vigil binary, runs the
// production processes apart (`vigil temporal`, `vigil worker`, `vigil api`)
// on a database of its own, with Slack and SMS simulators in the test
// process, drives realistic alert load through the API, injects faults
// (kill -9, SIGTERM, a blocked database, failing providers, alert storms)
// and checks the invariants against Postgres and the simulators' own logs:
// every accepted alert is counted once in exactly one incident, every due
// page is sent exactly once per (incident, step, recipient, channel), and
// how long each recovery took.
package chaos
