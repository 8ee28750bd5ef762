// Package loginguard throttles password guessing. It counts failed sign-ins
// per account and per client address; after a number of free failures each
// further failure locks the key for twice as long as the last (1 s, 2 s,
// 4 s, ... up to a cap), and while a key is locked attempts are refused
// before any password is checked.
//
// A Guard lives in one process: several API processes each keep their own
// counts.
package loginguard

import (
	"net"
	"strings"
	"sync"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultAccountFreeFailures = 5
	DefaultClientFreeFailures  = 20
	DefaultWindow              = 15 * time.Minute
	DefaultBaseBackoff         = time.Second
	DefaultMaxBackoff          = 15 * time.Minute
	DefaultMaxEntries          = 100_000
	// pendingTimeout forgets an admitted attempt whose outcome was never
	// reported (the handler failed between Admit and Result).
	pendingTimeout = 30 * time.Second
	// evictSample is how many entries are looked at to pick one to evict
	// when the table is full.
	evictSample = 64
)

// Limit names the key that refused an attempt.
type Limit string

// The two limits.
const (
	LimitAccount Limit = "account"
	LimitClient  Limit = "client"
)

// Config shapes a Guard; zero fields take the defaults.
type Config struct {
	// AccountFreeFailures and ClientFreeFailures are the failures a key may
	// have before the back-off starts.
	AccountFreeFailures int
	ClientFreeFailures  int
	// Window: a key's failures are forgotten once it has had no failure
	// and no lock for this long.
	Window time.Duration
	// BaseBackoff is the first lock; each further failure doubles it up to
	// MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxEntries bounds the keys kept in memory.
	MaxEntries int
	// Now is the clock (time.Now when nil); tests pass a fake one.
	Now func() time.Time
}

// Decision is the answer to Admit.
type Decision struct {
	// Allowed is true when the password may be checked.
	Allowed bool
	// Wait is how long the client must wait when the attempt is refused.
	Wait time.Duration
	// Limit names the key that refused it.
	Limit Limit
	// FirstRefusal is true for the first refusal of a lock, so callers can
	// record one audit row per lock rather than one per refused attempt.
	FirstRefusal bool
}

// Lock describes a lock that a failure started.
type Lock struct {
	Limit    Limit
	Failures int
	For      time.Duration
}

// Guard counts failures per key. It is safe for concurrent use.
type Guard struct {
	cfg Config

	mu        sync.Mutex
	entries   map[string]*entry
	lastSweep time.Time
}

type entry struct {
	failures    int
	lastFailure time.Time
	lockedUntil time.Time
	refused     bool // an attempt was refused during the current lock
	// pending are the deadlines of admitted attempts whose outcome is not
	// known yet; they count against the key so a burst of parallel
	// requests cannot all slip in before the first failure is recorded.
	pending []time.Time
}

// New returns a Guard with cfg's settings (defaults for zero fields).
func New(cfg Config) *Guard {
	if cfg.AccountFreeFailures <= 0 {
		cfg.AccountFreeFailures = DefaultAccountFreeFailures
	}
	if cfg.ClientFreeFailures <= 0 {
		cfg.ClientFreeFailures = DefaultClientFreeFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.BaseBackoff {
		cfg.MaxBackoff = cfg.BaseBackoff
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{cfg: cfg, entries: map[string]*entry{}}
}

// AccountKey is the key of a login (case-insensitive).
func AccountKey(login string) string {
	return "account:" + strings.ToLower(strings.TrimSpace(login))
}

// ClientKey is the key of a client address. IPv6 clients are keyed by their
// /64, which one host or household usually holds whole.
func ClientKey(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return "client:" + p.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return "client:" + ip
}

// Admit decides whether an attempt to sign in to login from client may have
// its password checked. An admitted attempt must be followed by Result.
// A refused attempt changes no count and extends no lock.
func (g *Guard) Admit(login, client string) Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	g.maybeSweep(now)
	keys := [2]string{AccountKey(login), ClientKey(client)}
	free := [2]int{g.cfg.AccountFreeFailures, g.cfg.ClientFreeFailures}
	limits := [2]Limit{LimitAccount, LimitClient}
	var refuse Decision
	for i, k := range keys {
		e := g.live(k, now)
		if e == nil {
			continue
		}
		var wait time.Duration
		switch {
		case now.Before(e.lockedUntil):
			wait = e.lockedUntil.Sub(now)
		case len(e.pending) >= max(1, free[i]-e.failures):
			// As many attempts are under way as the key may still fail:
			// the next one waits for their outcome.
			wait = g.cfg.BaseBackoff
		default:
			continue
		}
		if wait > refuse.Wait {
			refuse = Decision{Wait: wait, Limit: limits[i]}
			refuse.FirstRefusal = now.Before(e.lockedUntil) && !e.refused
		}
	}
	if refuse.Wait > 0 {
		for _, k := range keys {
			if e := g.entries[k]; e != nil && now.Before(e.lockedUntil) {
				e.refused = true
			}
		}
		return refuse
	}
	for _, k := range keys {
		e := g.entry(k, now)
		e.pending = append(e.pending, now.Add(pendingTimeout))
	}
	return Decision{Allowed: true}
}

// Result records the outcome of an admitted attempt. A failure counts
// against both keys and may lock them (the locks started are returned); a
// success clears the account's failures but not the client's.
func (g *Guard) Result(login, client string, ok bool) []Lock {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	account, cl := AccountKey(login), ClientKey(client)
	for _, k := range []string{account, cl} {
		if e := g.entries[k]; e != nil && len(e.pending) > 0 {
			e.pending = e.pending[1:]
		}
	}
	if ok {
		if e := g.entries[account]; e != nil {
			e.failures, e.lockedUntil, e.refused = 0, time.Time{}, false
			if len(e.pending) == 0 {
				delete(g.entries, account)
			}
		}
		return nil
	}
	var locks []Lock
	for _, kl := range []struct {
		key   string
		free  int
		limit Limit
	}{{account, g.cfg.AccountFreeFailures, LimitAccount}, {cl, g.cfg.ClientFreeFailures, LimitClient}} {
		e := g.entry(kl.key, now)
		e.failures++
		e.lastFailure = now
		if over := e.failures - kl.free; over > 0 {
			d := g.backoff(over)
			if until := now.Add(d); until.After(e.lockedUntil) {
				e.lockedUntil, e.refused = until, false
			}
			locks = append(locks, Lock{Limit: kl.limit, Failures: e.failures, For: d})
		}
	}
	return locks
}

// backoff is the lock after the over-th failure beyond the free ones.
func (g *Guard) backoff(over int) time.Duration {
	d := g.cfg.BaseBackoff
	for i := 1; i < over; i++ {
		d *= 2
		if d >= g.cfg.MaxBackoff {
			return g.cfg.MaxBackoff
		}
	}
	return min(d, g.cfg.MaxBackoff)
}

// Len is the number of keys kept.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.entries)
}

// live returns key's entry with stale pending attempts dropped, or nil
// (after deleting it) when it has expired.
func (g *Guard) live(key string, now time.Time) *entry {
	e := g.entries[key]
	if e == nil {
		return nil
	}
	g.tidy(e, now)
	if g.expired(e, now) {
		delete(g.entries, key)
		return nil
	}
	return e
}

// entry returns key's live entry, making one (evicting another when the
// table is full) when there is none.
func (g *Guard) entry(key string, now time.Time) *entry {
	if e := g.live(key, now); e != nil {
		return e
	}
	if len(g.entries) >= g.cfg.MaxEntries {
		g.sweep(now)
	}
	if len(g.entries) >= g.cfg.MaxEntries {
		g.evictOne(now)
	}
	e := &entry{}
	g.entries[key] = e
	return e
}

// tidy drops pending attempts whose outcome never came.
func (g *Guard) tidy(e *entry, now time.Time) {
	n := 0
	for _, d := range e.pending {
		if now.Before(d) {
			e.pending[n] = d
			n++
		}
	}
	e.pending = e.pending[:n]
}

// expired is true when an entry has nothing left to remember: no pending
// attempt, and neither a failure nor a lock within the window.
func (g *Guard) expired(e *entry, now time.Time) bool {
	if len(e.pending) > 0 {
		return false
	}
	last := e.lastFailure
	if e.lockedUntil.After(last) {
		last = e.lockedUntil
	}
	return !now.Before(last.Add(g.cfg.Window))
}

// maybeSweep removes expired entries at most once a minute.
func (g *Guard) maybeSweep(now time.Time) {
	if now.Sub(g.lastSweep) < time.Minute {
		return
	}
	g.sweep(now)
}

func (g *Guard) sweep(now time.Time) {
	g.lastSweep = now
	for k, e := range g.entries {
		g.tidy(e, now)
		if g.expired(e, now) {
			delete(g.entries, k)
		}
	}
}

// evictOne drops, from a random sample, the entry that would expire first,
// preferring entries that are not locked.
func (g *Guard) evictOne(now time.Time) {
	var victim string
	var best *entry
	n := 0
	for k, e := range g.entries {
		if best == nil || less(e, best, now) {
			victim, best = k, e
		}
		if n++; n >= evictSample {
			break
		}
	}
	delete(g.entries, victim)
}

// less orders eviction candidates: unlocked before locked, then fewer
// failures, then older.
func less(a, b *entry, now time.Time) bool {
	al, bl := now.Before(a.lockedUntil), now.Before(b.lockedUntil)
	if al != bl {
		return !al
	}
	if a.failures != b.failures {
		return a.failures < b.failures
	}
	return a.lastFailure.Before(b.lastFailure)
}
