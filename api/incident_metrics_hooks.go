package api

// incidentCounters are the ingestion counters the API exports.
type incidentCounters interface {
	AlertReceived(severity string)
	IncidentOpened(severity string)
}

type noCounters struct{}

func (noCounters) AlertReceived(string)  {}
func (noCounters) IncidentOpened(string) {}

// incidentMetrics returns the counters.
func (s *Server) incidentMetrics() incidentCounters { return noCounters{} }
