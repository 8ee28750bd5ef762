// Package migrations embeds Vigil's plain SQL migrations, applied in order by
// goose (see internal/database). Each file is NNNNN_name.sql with goose's
// "-- +goose Up" and "-- +goose Down" sections.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
