package api

import "github.com/vigil-health/vigil/internal/metrics"

// incidentMetrics returns the process's incident counters.
func (s *Server) incidentMetrics() *metrics.IncidentMetrics { return s.Metrics.Incidents() }
