package metrics

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Every label of the domain metrics takes values from a fixed list; a value
// outside it is counted as "other", so a bad input can never create
// unbounded series. Each metric's series are created at registration, at
// zero, so dashboards and alerts see them before the first event.

// bounded returns v when it is one of known, else "other".
func bounded(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}

// counterVec creates a counter vector with every combination of the
// labels' known values (plus "other" where other is true) at zero.
func counterVec(name, help string, labels []string, values [][]string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	for _, combo := range combinations(values) {
		v.WithLabelValues(combo...)
	}
	return v
}

// combinations is every tuple taking one value from each list.
func combinations(values [][]string) [][]string {
	out := [][]string{{}}
	for _, vs := range values {
		var next [][]string
		for _, prefix := range out {
			for _, v := range vs {
				next = append(next, append(slices.Clone(prefix), v))
			}
		}
		out = next
	}
	return out
}

// cached returns the registry's metrics of one kind from m, building and
// registering them on first use; it panics, like MustRegister, when build
// fails (a metric of the same name but another shape is registered).
func cached[T any](m *sync.Map, r *Registry, build func(*Registry) (T, error)) T {
	if v, ok := m.Load(r); ok {
		return v.(T)
	}
	v, err := build(r)
	if err != nil {
		panic(err)
	}
	actual, _ := m.LoadOrStore(r, v)
	return actual.(T)
}
