package api

import "github.com/gin-gonic/gin"

// referenceRoutes registers this area's routes (filled in by its owner).
func (s *Server) referenceRoutes(_ *gin.RouterGroup) {}
