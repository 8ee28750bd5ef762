package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"
)

// Get runs query, which returns at most one row, on q (a *sqlx.DB or
// *sqlx.Tx) and scans the row into a T. When there is no row it returns
// notFound as it is; any other error is returned as "what: err".
func Get[T any](ctx context.Context, q sqlx.QueryerContext, notFound error, what, query string, args ...any) (T, error) {
	var row, zero T
	err := sqlx.GetContext(ctx, q, &row, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return zero, notFound
	}
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return row, nil
}

// Find is Get for a row that may be missing: found is false, and err nil,
// when query returns no row.
func Find[T any](ctx context.Context, q sqlx.QueryerContext, what, query string, args ...any) (row T, found bool, err error) {
	row, err = Get[T](ctx, q, sql.ErrNoRows, what, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return row, false, nil
	}
	return row, err == nil, err
}

// Select runs query on q (a *sqlx.DB or *sqlx.Tx) and scans every row into
// a slice of T, empty but never nil when there is none. An error is
// returned as "what: err".
func Select[T any](ctx context.Context, q sqlx.QueryerContext, what, query string, args ...any) ([]T, error) {
	rows := []T{}
	if err := sqlx.SelectContext(ctx, q, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return rows, nil
}

// SelectEach is Select, then each(&row) on every row, such as a method that
// fills fields the columns leave unset or puts times in UTC.
func SelectEach[T any](ctx context.Context, q sqlx.QueryerContext, each func(*T), what, query string, args ...any) ([]T, error) {
	rows, err := Select[T](ctx, q, what, query, args...)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		each(&rows[i])
	}
	return rows, nil
}

// ExpectRow returns notFound when res (of an UPDATE or DELETE) changed no
// row, and nil otherwise. An error reading the count is returned as
// "what: err".
func ExpectRow(res sql.Result, notFound error, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// Args collects the arguments of a statement built piece by piece.
type Args []any

// Add appends v to the arguments and returns its placeholder: $1, $2, ….
func (a *Args) Add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
