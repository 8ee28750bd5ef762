// Package watch is the home of capacity watches: each watch is a
// long-running workflow that polls the service directory (package
// directory, with its simulator in directory/directorysim) and Postgres
// keeps what it saw.
//
// The read side (query.go) lists the current status of every monitored
// service (service_statuses) by capacity, pages through the history of
// status changes (status_changes) newest first with a keyset cursor, and
// places services on a map (WGS84 latitude and longitude from their
// National Grid easting and northing, package osgb).
package watch
