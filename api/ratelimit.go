package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP; idle buckets are dropped.
type ipLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*ipBucket
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxIPBuckets bounds the limiter's memory; beyond it idle buckets are swept.
const maxIPBuckets = 10000

// newIPLimiter allows each client IP perMinute requests a minute, and
// burst of them at once.
func newIPLimiter(perMinute, burst int) *ipLimiter {
	return &ipLimiter{limit: rate.Limit(float64(perMinute) / 60), burst: burst, buckets: map[string]*ipBucket{}}
}

// allow reports whether ip may make a request now, and otherwise how long
// it should wait.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= maxIPBuckets {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &ipBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
