package api

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Query-parameter parsing shared by the list endpoints. Each helper answers a
// bad value with the field error naming the parameter (pathIDParam, for the
// :id path parameter, answers the request itself).

// intParam reads an optional integer query parameter within [lo, hi]; a
// parameter given empty is refused.
func intParam(c *gin.Context, name string, def, lo, hi int) (int, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

// Ranges of Postgres integer types, for numbers a request sends to a
// column or a query parameter of that type: a value outside its column's
// range is a 400 naming the field, never a database error.
const (
	pgSmallintMin, pgSmallintMax = math.MinInt16, math.MaxInt16
	pgIntegerMin, pgIntegerMax   = math.MinInt32, math.MaxInt32
	pgBigintMin, pgBigintMax     = math.MinInt64, math.MaxInt64
)

// int64Param reads an optional integer query parameter within [lo, hi]
// (give the bounds of the column it is compared with, such as pgBigintMax);
// a parameter given empty, not a whole number or out of range is refused.
func int64Param(c *gin.Context, name string, def, lo, hi int64) (int64, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	return parseInt64(name, v, lo, hi)
}

// parseInt64 parses v, the value of field, as a whole number within
// [lo, hi].
func parseInt64(field, v string, lo, hi int64) (int64, *fieldError) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalid(field, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n, nil
}

// pathIDParam reads the :id path parameter, answering 400 with message
// unless valid accepts it.
func pathIDParam(c *gin.Context, valid func(string) bool, message string) (string, bool) {
	id := c.Param("id")
	if !valid(id) {
		abortInvalid(c, invalid("id", message))
		return "", false
	}
	return id, true
}

// boolParam reads an optional true/false query parameter; def when absent.
func boolParam(c *gin.Context, name string, def bool) (bool, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, invalid(name, "must be true or false")
	}
	return b, nil
}

// keysetPage reads the limit (1 to maxLimit, default defaultLimit) and
// the optional cursor (nil when absent; refused unless decode, the list's
// DecodeCursor, takes it) of a list paged by keyset.
func keysetPage[C any](c *gin.Context, defaultLimit, maxLimit int, decode func(string) (C, error)) (limit int, cursor *C, fe *fieldError) {
	if limit, fe = intParam(c, "limit", defaultLimit, 1, maxLimit); fe != nil {
		return 0, nil, fe
	}
	v, ok := c.GetQuery("cursor")
	if !ok {
		return limit, nil, nil
	}
	cur, err := decode(v)
	if err != nil {
		return 0, nil, invalid("cursor", "must be a next_cursor returned by this endpoint")
	}
	return limit, &cur, nil
}

// offsetPage reads the limit (1 to 200, default 50) and offset (default 0)
// of a list paged by offset.
func offsetPage(c *gin.Context) (limit, offset int, fe *fieldError) {
	if limit, fe = intParam(c, "limit", 50, 1, 200); fe != nil {
		return 0, 0, fe
	}
	if offset, fe = intParam(c, "offset", 0, 0, 1<<30); fe != nil {
		return 0, 0, fe
	}
	return limit, offset, nil
}

// idPage reads the limit (1 to 200, default 50) and before (an id cursor:
// the smallest id of the previous page; 0, the default, starts at the
// newest) of a list paged by id, newest first.
func idPage(c *gin.Context) (limit int, before int64, fe *fieldError) {
	if limit, fe = intParam(c, "limit", 50, 1, 200); fe != nil {
		return 0, 0, fe
	}
	if before, fe = int64Param(c, "before", 0, 0, pgBigintMax); fe != nil {
		return 0, 0, fe
	}
	return limit, before, nil
}

// enumListParam reads a comma-separated (or repeated) query
// parameter whose values must all be in allowed.
func enumListParam(c *gin.Context, name string, allowed []string) ([]string, *fieldError) {
	raw, ok := c.GetQueryArray(name)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, r := range raw {
		for v := range strings.SplitSeq(r, ",") {
			v = strings.TrimSpace(v)
			if !slices.Contains(allowed, v) {
				return nil, invalid(name, "must be a comma-separated list of "+strings.Join(allowed, ", "))
			}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// timeParam reads an optional RFC 3339 time; zero when absent.
func timeParam(c *gin.Context, name string) (time.Time, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		msg := "must be an RFC 3339 time such as 2026-07-15T10:00:00Z"
		if strings.Contains(v, " ") {
			msg += " (encode + in an offset as %2B)"
		}
		return time.Time{}, invalid(name, msg)
	}
	return t.UTC(), nil
}

// timeWindow reads the optional from (inclusive) and to (exclusive) RFC 3339
// bounds of a list; from after to is refused, naming from.
func timeWindow(c *gin.Context) (from, to time.Time, fe *fieldError) {
	if from, fe = timeParam(c, "from"); fe != nil {
		return from, to, fe
	}
	if to, fe = timeParam(c, "to"); fe != nil {
		return from, to, fe
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return from, to, invalid("from", "must not be after to")
	}
	return from, to, nil
}
