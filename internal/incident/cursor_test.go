package incident_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/keyset"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    incident.Cursor
	}{
		{"microsecond precision", incident.Cursor{OpenedAt: time.Date(2026, 7, 15, 10, 0, 0, 123456000, time.UTC), ID: "6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e"}},
		{"before 1970", incident.Cursor{OpenedAt: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), ID: "00000000-0000-0000-0000-000000000001"}},
		{"other zone becomes UTC", incident.Cursor{OpenedAt: time.Date(2026, 3, 29, 1, 30, 0, 0, time.FixedZone("BST", 3600)), ID: "6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.c.Encode()
			require.Regexp(t, `^[A-Za-z0-9_-]+$`, s, "URL-safe without escaping")
			got, err := incident.DecodeCursor(s)
			require.NoError(t, err)
			require.True(t, tt.c.OpenedAt.Equal(got.OpenedAt))
			require.Equal(t, time.UTC, got.OpenedAt.Location())
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
		{"padded base64", base64.URLEncoding.EncodeToString([]byte("v1:1:6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e"))},
		{"wrong version", enc("v2:1784109600000000:6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e")},
		{"missing part", enc("v1:1784109600000000")},
		{"extra part", enc("v1:1:2:6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e")},
		{"time not a number", enc("v1:yesterday:6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e")},
		{"id not a uuid", enc("v1:1784109600000000:N01")},
		{"sql in the id", enc("v1:1:' OR 1=1 --")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := incident.DecodeCursor(tt.cursor)
			require.ErrorIs(t, err, incident.ErrInvalidCursor)
			require.ErrorIs(t, err, keyset.ErrInvalid, "one sentinel for every list's cursors")
			require.Equal(t, 1, strings.Count(err.Error(), "invalid cursor"), "said once: %v", err)
		})
	}
}
