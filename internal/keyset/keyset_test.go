package keyset_test

import (
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/keyset"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 30, 1, 123456000, time.UTC)
	at2, id, err := keyset.Decode("v1", keyset.Encode("v1", at, "abc:def"))
	require.NoError(t, err)
	require.True(t, at.Equal(at2))
	require.Equal(t, "abc:def", id, "ids may contain the separator")
}

func TestDecodeRefuses(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ name, cursor string }{
		{"not base64", "!!!"},
		{"another list's tag", keyset.Encode("c1", time.Now(), "1")},
		{"too few parts", b64("v1:123")},
		{"time not a number", b64("v1:soon:1")},
		{"empty id", b64("v1:123:")},
		{"time past the largest int64", b64("v1:9223372036854775808:1")},
		{"time past year 9999", b64("v1:253402300800000000:1")},
		{"time before year 1", b64("v1:-62135596800000001:1")},
		{"most negative time", b64("v1:-9223372036854775808:1")},
		{"NUL in id", b64("v1:123:a\x00b")},
		{"invalid UTF-8 in id", b64("v1:123:a\xffb")},
		{"control character in id", b64("v1:123:a\nb")},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := keyset.Decode("v1", tt.cursor)
			require.ErrorIs(t, err, keyset.ErrInvalid)
		})
	}
}

func TestDecodeBounds(t *testing.T) {
	for _, at := range []time.Time{keyset.MinTime, keyset.MaxTime} {
		got, id, err := keyset.Decode("v1", keyset.Encode("v1", at, "1"))
		require.NoError(t, err)
		require.True(t, at.Equal(got), "%s", at)
		require.Equal(t, "1", id)
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		name  string
		rows  []int
		limit int
		page  []int
		last  int // 0: no next page
	}{
		{"empty", nil, 2, nil, 0},
		{"short page", []int{1}, 2, []int{1}, 0},
		{"full page, no more", []int{1, 2}, 2, []int{1, 2}, 0},
		{"one more than the page", []int{1, 2, 3}, 2, []int{1, 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, last := keyset.Cut(tt.rows, tt.limit)
			require.Equal(t, tt.page, page)
			if tt.last == 0 {
				require.Nil(t, last)
				return
			}
			require.NotNil(t, last)
			require.Equal(t, tt.last, *last)
		})
	}
}

func TestPageSize(t *testing.T) {
	errBad := errors.New("bad filter")
	n, err := keyset.PageSize(0, 50, 200, errBad)
	require.NoError(t, err)
	require.Equal(t, 50, n, "zero takes the default")
	n, err = keyset.PageSize(200, 50, 200, errBad)
	require.NoError(t, err)
	require.Equal(t, 200, n)
	for _, limit := range []int{-1, 201} {
		_, err = keyset.PageSize(limit, 50, 200, errBad)
		require.ErrorIs(t, err, errBad, "limit %d", limit)
	}
}

func TestNewPage(t *testing.T) {
	cursorOf := func(last *int) string { return "after " + strconv.Itoa(*last) }
	page := keyset.NewPage([]int{1, 2, 3}, 2, cursorOf)
	require.Equal(t, []int{1, 2}, page.Items)
	require.NotNil(t, page.Next)
	require.Equal(t, "after 2", *page.Next)

	page = keyset.NewPage([]int{1, 2}, 2, cursorOf)
	require.Equal(t, []int{1, 2}, page.Items)
	require.Nil(t, page.Next, "no row beyond the page: the last page")
}
