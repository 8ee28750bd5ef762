package api

import "github.com/gin-gonic/gin"

// slackRoutes registers this area's routes (filled in by its owner).
func (s *Server) slackRoutes(_ *gin.RouterGroup) {}
