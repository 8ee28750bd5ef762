package api

import (
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

// answerStored answers a PUT that stored body: 201 with a Location header
// when it created the record, 200 when it replaced it.
func answerStored(c *gin.Context, created bool, location string, body any) {
	if created {
		c.Header("Location", location)
	}
	c.JSON(createdStatus(created), body)
}
