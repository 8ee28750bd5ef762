// Package keyset encodes the opaque cursors of newest-first keyset
// pagination: the position (time, id) of a page's last row, behind a format
// tag so each list's cursors are refused by the others and the format can
// change later.
package keyset

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalid is returned for a cursor this package (with this tag) did not
// make.
var ErrInvalid = errors.New("invalid cursor")

// Encode returns the position as an opaque, URL-safe string.
func Encode(tag string, at time.Time, id string) string {
	raw := tag + ":" + strconv.FormatInt(at.UnixMicro(), 10) + ":" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// Decode parses a string made by Encode with the same tag.
func Decode(tag, s string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	parts := strings.SplitN(string(raw), ":", 3)
	if len(parts) != 3 || parts[0] != tag || parts[2] == "" {
		return time.Time{}, "", ErrInvalid
	}
	micros, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if micros < MinTime.UnixMicro() || micros > MaxTime.UnixMicro() {
		return time.Time{}, "", fmt.Errorf("%w: time %d out of range", ErrInvalid, micros)
	}
	if !validID(parts[2]) {
		return time.Time{}, "", fmt.Errorf("%w: id is not text", ErrInvalid)
	}
	return time.UnixMicro(micros).UTC(), parts[2], nil
}

// MinTime and MaxTime bound a cursor's time: years 1 to 9999, which every
// Postgres timestamp column and JSON time holds. A cursor beyond them was
// not made by Encode for a stored row, and would fail in the database.
var (
	MinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// validID reports whether id is valid UTF-8 without control characters:
// text a query can bind.
func validID(id string) bool {
	if !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Cut cuts rows, read with a LIMIT of one more than the page size, to the
// page. last is the page's last row (where the next page's cursor points)
// when another page follows, else nil.
func Cut[T any](rows []T, limit int) (page []T, last *T) {
	if len(rows) <= limit {
		return rows, nil
	}
	return rows[:limit], &rows[limit-1]
}

// PageSize returns the page size a list asked for: limit, or defaultLimit
// when limit is zero. A limit outside 1 to maxLimit is an error wrapping
// invalid.
func PageSize(limit, defaultLimit, maxLimit int, invalid error) (int, error) {
	if limit == 0 {
		limit = defaultLimit
	}
	if limit < 1 || limit > maxLimit {
		return 0, fmt.Errorf("%w: limit %d is not between 1 and %d", invalid, limit, maxLimit)
	}
	return limit, nil
}

// Page is one page of a newest-first list: items T, continued by a cursor C.
type Page[T, C any] struct {
	Items []T
	// Next continues the listing; nil on the last page.
	Next *C
}

// NewPage cuts rows, read with a LIMIT of one more than the page size, to
// the page; when another page follows, Next is the cursor of the page's last
// row, as cursorOf makes it.
func NewPage[T, C any](rows []T, limit int, cursorOf func(last *T) C) *Page[T, C] {
	items, last := Cut(rows, limit)
	page := &Page[T, C]{Items: items}
	if last != nil {
		next := cursorOf(last)
		page.Next = &next
	}
	return page
}
