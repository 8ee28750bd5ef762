package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPIDocument is the OpenAPI 3 description of every route. A test keeps
// it and the router in agreement, in both directions.
//
//go:embed openapi.json
var OpenAPIDocument []byte

// openAPI serves OpenAPIDocument.
func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", OpenAPIDocument)
}
