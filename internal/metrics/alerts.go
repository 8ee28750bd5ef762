package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// refusedByRegistry caches each Registry's refused-alerts counter.
var refusedByRegistry sync.Map // *Registry -> *prometheus.CounterVec

// AlertsRefused returns the registry's vigil_alerts_refused_total counter,
// by source (alertmanager, ...) and reason (the refused field, e.g.
// labels.patient_id), creating and registering it on first use. Callers
// must keep both labels to a bounded set of values. It panics, like
// MustRegister, if a metric of the same name but a different shape is
// already registered.
func AlertsRefused(r *Registry) *prometheus.CounterVec {
	return cached(&refusedByRegistry, r, func(r *Registry) (*prometheus.CounterVec, error) {
		return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_refused_total",
			Help: "Alerts of an integration batch that Vigil could not parse (each opened a failsafe incident instead), by source and reason.",
		}, []string{"source", "reason"}))
	})
}
