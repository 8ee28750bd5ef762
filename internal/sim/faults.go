// Package sim holds what Vigil's simulators of outside services share: the
// fault injection (a delay before every response, a fraction of requests
// answered 503) that tests and the chaos suite turn on and off.
package sim

import (
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults injects latency and failures into a simulator's HTTP handler. A
// simulator embeds it, so SetLatency and SetFailureRate are the
// simulator's. Its methods are safe for concurrent use.
type Faults struct {
	mu          sync.Mutex
	latency     time.Duration
	failureRate float64
	rng         *rand.Rand
}

// NewFaults returns fault injection delaying every response by latency and
// answering the fraction failureRate of requests 503, drawing failures from
// a generator seeded with seed (so a seed makes them deterministic).
func NewFaults(latency time.Duration, failureRate float64, seed uint64) *Faults {
	return &Faults{
		latency:     max(0, latency),
		failureRate: clamp01(failureRate),
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// SetFailureRate changes the fraction of requests answered 503.
func (f *Faults) SetFailureRate(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failureRate = clamp01(rate)
}

// SetLatency changes the delay before every response.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = max(0, d)
}

// Wrap returns next behind the faults: each request first waits out the
// latency (a request whose context ends meanwhile gets no answer), then
// is either answered by unavailable (with the failure rate's odds) or passed
// to next.
func (f *Faults) Wrap(next http.Handler, unavailable func(http.ResponseWriter)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		latency := f.latency
		fail := f.failureRate > 0 && f.rng.Float64() < f.failureRate
		f.mu.Unlock()
		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fail {
			unavailable(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clamp01 is f limited to [0, 1], with NaN as 0.
func clamp01(f float64) float64 {
	if math.IsNaN(f) || f < 0 {
		return 0
	}
	return math.Min(f, 1)
}
