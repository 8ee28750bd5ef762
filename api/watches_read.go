package api

import "github.com/gin-gonic/gin"

// watchReadRoutes registers the capacity read side (filled in by its owner).
func (s *Server) watchReadRoutes(_ *gin.RouterGroup) {}
