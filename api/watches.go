package api

import "github.com/gin-gonic/gin"

// watchRoutes registers the capacity watch management routes.
func (s *Server) watchRoutes(_ *gin.RouterGroup) {}
