package watch_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/keyset"
	"github.com/vigil-health/vigil/internal/watch"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    watch.Cursor
	}{
		{"microsecond precision", watch.Cursor{DetectedAt: time.Date(2026, 7, 15, 10, 0, 0, 123456000, time.UTC), ID: 42}},
		{"before 1970", watch.Cursor{DetectedAt: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), ID: 1}},
		{"large id", watch.Cursor{DetectedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ID: 1 << 62}},
		{"other zone becomes UTC", watch.Cursor{DetectedAt: time.Date(2026, 3, 29, 1, 30, 0, 0, time.FixedZone("BST", 3600)), ID: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.c.Encode()
			require.Regexp(t, `^[A-Za-z0-9_-]+$`, s, "URL-safe without escaping")
			got, err := watch.DecodeCursor(s)
			require.NoError(t, err)
			require.True(t, tt.c.DetectedAt.Equal(got.DetectedAt))
			require.Equal(t, time.UTC, got.DetectedAt.Location())
			require.Equal(t, tt.c.ID, got.ID)
		})
	}
}

func TestDecodeCursorRejectsForeignStrings(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		cursor string
	}{
		{"empty", ""},
		{"not base64", "%%%"},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte("c1:1:12"))},
		{"wrong version", enc("c2:1784109600000000:12")},
		{"an incidents cursor", enc("v1:1784109600000000:6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e")},
		{"missing part", enc("c1:1784109600000000")},
		{"extra part", enc("c1:1:2:3")},
		{"time not a number", enc("c1:yesterday:12")},
		{"id not a number", enc("c1:1784109600000000:abc")},
		{"id zero", enc("c1:1784109600000000:0")},
		{"id negative", enc("c1:1784109600000000:-5")},
		{"sql in the id", enc("c1:1:' OR 1=1 --")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := watch.DecodeCursor(tt.cursor)
			require.ErrorIs(t, err, watch.ErrInvalidCursor)
			require.ErrorIs(t, err, keyset.ErrInvalid, "one sentinel for every list's cursors")
			require.Equal(t, 1, strings.Count(err.Error(), "invalid cursor"), "said once: %v", err)
		})
	}
}

func TestPosition(t *testing.T) {
	ptr := func(v int) *int { return &v }
	tests := []struct {
		name              string
		easting, northing *int
		ok                bool
		lat, lon          float64
	}{
		{"Big Ben", ptr(530268), ptr(179640), true, 51.5007, -0.1246},
		{"no easting", nil, ptr(179640), false, 0, 0},
		{"no northing", ptr(530268), nil, false, 0, 0},
		{"neither", nil, nil, false, 0, 0},
		{"unknown-location sentinel 0, 0", ptr(0), ptr(0), false, 0, 0},
		{"east of the grid", ptr(999999), ptr(179640), false, 0, 0},
		{"north of the grid", ptr(530268), ptr(9999999), false, 0, 0},
		{"negative", ptr(-5), ptr(179640), false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, lon := watch.Position(tt.easting, tt.northing)
			if !tt.ok {
				require.Nil(t, lat)
				require.Nil(t, lon)
				return
			}
			require.NotNil(t, lat)
			require.NotNil(t, lon)
			require.InDelta(t, tt.lat, *lat, 1e-4)
			require.InDelta(t, tt.lon, *lon, 1e-4)
			require.Equal(t, *lat, float64(int64(*lat*1e6+0.5))/1e6, "rounded to 6 places")
		})
	}
}
