package api

import "github.com/gin-gonic/gin"

// incidentReadRoutes registers this area's routes (filled in by its owner).
func (s *Server) incidentReadRoutes(_ *gin.RouterGroup) {}
