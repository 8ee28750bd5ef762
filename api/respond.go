package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// createdStatus is the status of a request that creates a record or finds
// (or replaces) the existing one: 201 when it created it, 200 otherwise.
func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// answerCreated answers 201 with the new record's location in the
// Location header.
func answerCreated(c *gin.Context, location string, body any) {
	c.Header("Location", location)
	c.JSON(http.StatusCreated, body)
}

// answerStored answers a PUT that stored body: 201 with a Location header
// when it created the record, 200 when it replaced it.
func answerStored(c *gin.Context, created bool, location string, body any) {
	if created {
		answerCreated(c, location, body)
		return
	}
	c.JSON(http.StatusOK, body)
}

// answerOK answers 200 with body or, when err (from reading it) is set,
// the internal error, logged as what.
func (s *Server) answerOK(c *gin.Context, what string, body any, err error) {
	if err != nil {
		s.abortInternal(c, what, err)
		return
	}
	c.JSON(http.StatusOK, body)
}

// nextCursor is the next_cursor of a keyset page whose next page starts at
// next: nil on the last page.
func nextCursor[C interface{ Encode() string }](next *C) *string {
	if next == nil {
		return nil
	}
	encoded := (*next).Encode()
	return &encoded
}

// idPageBody is the body of a page of a list paged by id (see idPage):
// the items and, when the page is full, next_before, the id (given by id)
// of its last item.
func idPageBody[T any](items []T, limit int, id func(T) int64) gin.H {
	body := gin.H{"items": items}
	if len(items) == limit {
		body["next_before"] = id(items[len(items)-1])
	}
	return body
}

// listByOffset answers a list paged by offset (see offsetPage): list's
// rows of the page, each shown with view, with the limit and offset.
func listByOffset[R, V any](s *Server, c *gin.Context, what string, list func(context.Context, int, int) ([]R, error), view func(R) V) {
	limit, offset, fe := offsetPage(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	rows, err := list(c.Request.Context(), limit, offset)
	if err != nil {
		s.abortInternal(c, what, err)
		return
	}
	items := make([]V, 0, len(rows))
	for _, r := range rows {
		items = append(items, view(r))
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "limit": limit, "offset": offset})
}
