package loginguard

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a fake clock the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time         { return c.t }
func (c *clock) add(d time.Duration)    { c.t = c.t.Add(d) }
func newClock() *clock                  { return &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)} }
func guard(c *clock, cfg Config) *Guard { cfg.Now = c.now; return New(cfg) }

// fail makes one admitted, failed attempt and requires it was admitted.
func fail(t *testing.T, g *Guard, login, ip string) []Lock {
	t.Helper()
	d := g.Admit(login, ip)
	require.True(t, d.Allowed, "attempt for %s from %s refused: %+v", login, ip, d)
	return g.Result(login, ip, false)
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		waits []time.Duration // the lock after each failure beyond the free ones
	}{
		{"defaults", Config{}, []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"cap", Config{AccountFreeFailures: 2, MaxBackoff: 5 * time.Second},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"base", Config{AccountFreeFailures: 1, BaseBackoff: 3 * time.Second, MaxBackoff: time.Minute},
			[]time.Duration{3 * time.Second, 6 * time.Second, 12 * time.Second, 24 * time.Second, 48 * time.Second, time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			g := guard(c, tt.cfg)
			free := g.cfg.AccountFreeFailures
			for i := range free {
				require.Empty(t, fail(t, g, "n01", fmt.Sprintf("10.0.0.%d", i)), "free failure %d locked", i+1)
			}
			for i, want := range tt.waits {
				locks := fail(t, g, "N01", fmt.Sprintf("10.0.1.%d", i))
				require.Equal(t, []Lock{{Limit: LimitAccount, Failures: free + i + 1, For: want}}, locks)
				d := g.Admit("n01", "10.9.9.9")
				require.False(t, d.Allowed)
				require.Equal(t, LimitAccount, d.Limit)
				require.Equal(t, want, d.Wait)
				require.True(t, d.FirstRefusal)
				c.add(want - time.Millisecond)
				d = g.Admit("n01", "10.9.9.9")
				require.False(t, d.Allowed, "a refused attempt changes nothing: still locked just before the end")
				require.False(t, d.FirstRefusal)
				require.Equal(t, time.Millisecond, d.Wait)
				c.add(time.Millisecond)
			}
		})
	}
}

func TestRefusedAttemptsDoNotExtendTheLock(t *testing.T) {
	c := newClock()
	g := guard(c, Config{AccountFreeFailures: 1})
	fail(t, g, "n01", "10.0.0.1")
	require.Len(t, fail(t, g, "n01", "10.0.0.1"), 1, "the second failure locks the account")
	for range 100 {
		d := g.Admit("n01", "10.0.0.1")
		require.False(t, d.Allowed)
		require.Equal(t, time.Second, d.Wait)
	}
	c.add(time.Second)
	require.True(t, g.Admit("n01", "10.0.0.1").Allowed)
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name string
		// failures then successes ({login, ip}) happen first; then the
		// attempt check is admitted or refused.
		failures  [][2]string
		successes [][2]string
		check     [2]string
		allowed   bool
		limit     Limit
	}{
		{
			name:     "account lock applies from every address",
			failures: [][2]string{{"n01", "10.0.0.1"}, {"n01", "10.0.0.2"}, {"n01", "10.0.0.3"}},
			check:    [2]string{"n01", "10.0.0.99"}, limit: LimitAccount,
		},
		{
			name:     "account key is case-insensitive",
			failures: [][2]string{{"N01", "10.0.0.1"}, {"n01", "10.0.0.2"}, {" n01 ", "10.0.0.3"}},
			check:    [2]string{"n01", "10.0.0.99"}, limit: LimitAccount,
		},
		{
			name:     "other accounts are not locked by one account's failures",
			failures: [][2]string{{"n01", "10.0.0.1"}, {"n01", "10.0.0.2"}, {"n01", "10.0.0.3"}},
			check:    [2]string{"n02", "10.0.0.1"}, allowed: true,
		},
		{
			name: "client lock applies across accounts",
			failures: [][2]string{{"a", "10.0.0.1"}, {"b", "10.0.0.1"}, {"c", "10.0.0.1"}, {"d", "10.0.0.1"},
				{"e", "10.0.0.1"}},
			check: [2]string{"f", "10.0.0.1"}, limit: LimitClient,
		},
		{
			name: "another client is not blocked by a client lock",
			failures: [][2]string{{"a", "10.0.0.1"}, {"b", "10.0.0.1"}, {"c", "10.0.0.1"}, {"d", "10.0.0.1"},
				{"e", "10.0.0.1"}},
			check: [2]string{"f", "10.0.0.2"}, allowed: true,
		},
		{
			name:      "a success clears the account",
			failures:  [][2]string{{"n01", "10.0.0.1"}, {"n01", "10.0.0.2"}},
			successes: [][2]string{{"n01", "10.0.0.3"}},
			check:     [2]string{"n01", "10.0.0.1"}, allowed: true,
		},
		{
			name: "a success does not clear the client",
			failures: [][2]string{{"a", "10.0.0.1"}, {"b", "10.0.0.1"}, {"c", "10.0.0.1"}, {"d", "10.0.0.1"},
				{"e", "10.0.0.1"}},
			successes: [][2]string{{"z", "10.0.0.2"}},
			check:     [2]string{"z", "10.0.0.1"}, limit: LimitClient,
		},
		{
			name: "IPv6 clients are keyed by their /64",
			failures: [][2]string{{"a", "2001:db8::1"}, {"b", "2001:db8::2"}, {"c", "2001:db8::3"}, {"d", "2001:db8::4"},
				{"e", "2001:db8::5"}},
			check: [2]string{"f", "2001:db8::ffff"}, limit: LimitClient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			g := guard(c, Config{AccountFreeFailures: 2, ClientFreeFailures: 4})
			for _, f := range tt.failures {
				fail(t, g, f[0], f[1])
			}
			for _, s := range tt.successes {
				require.True(t, g.Admit(s[0], s[1]).Allowed)
				require.Empty(t, g.Result(s[0], s[1], true))
			}
			d := g.Admit(tt.check[0], tt.check[1])
			require.Equal(t, tt.allowed, d.Allowed, "%+v", d)
			if !tt.allowed {
				require.Equal(t, tt.limit, d.Limit)
				require.Positive(t, d.Wait)
			}
		})
	}
}

func TestWindowForgetsFailures(t *testing.T) {
	c := newClock()
	g := guard(c, Config{AccountFreeFailures: 2, Window: time.Minute})
	fail(t, g, "n01", "10.0.0.1")
	fail(t, g, "n01", "10.0.0.1")
	c.add(time.Minute)
	require.Empty(t, fail(t, g, "n01", "10.0.0.1"), "failures older than the window are forgotten")
	require.Empty(t, fail(t, g, "n01", "10.0.0.1"))
	require.NotEmpty(t, fail(t, g, "n01", "10.0.0.1"), "the third failure within the window locks")
}

func TestWindowCountsFromTheLockEnd(t *testing.T) {
	c := newClock()
	g := guard(c, Config{AccountFreeFailures: 1, Window: time.Minute, BaseBackoff: 10 * time.Minute, MaxBackoff: 10 * time.Minute})
	fail(t, g, "n01", "10.0.0.1")
	fail(t, g, "n01", "10.0.0.1") // locked 10 minutes
	c.add(10*time.Minute + 30*time.Second)
	locks := fail(t, g, "n01", "10.0.0.1")
	require.Equal(t, []Lock{{Limit: LimitAccount, Failures: 3, For: 10 * time.Minute}}, locks,
		"a failure soon after a lock ends locks again at once")
}

func TestParallelAttemptsCannotOvershoot(t *testing.T) {
	c := newClock()
	g := guard(c, Config{AccountFreeFailures: 3})
	for range 3 {
		require.True(t, g.Admit("n01", "10.0.0.1").Allowed)
	}
	d := g.Admit("n01", "10.0.0.1")
	require.False(t, d.Allowed, "a fourth attempt in flight could be a fourth failure")
	require.Equal(t, LimitAccount, d.Limit)
	require.Equal(t, time.Second, d.Wait)
	g.Result("n01", "10.0.0.1", false)
	g.Result("n01", "10.0.0.1", false)
	// Two failures, one attempt still under way: one more may fail freely.
	require.False(t, g.Admit("n01", "10.0.0.1").Allowed)
	g.Result("n01", "10.0.0.1", false)
	// Three failures: the free ones are used up; one attempt at a time.
	require.True(t, g.Admit("n01", "10.0.0.1").Allowed)
	require.False(t, g.Admit("n01", "10.0.0.1").Allowed)
}

func TestUnreportedAttemptsAreForgotten(t *testing.T) {
	c := newClock()
	g := guard(c, Config{AccountFreeFailures: 1})
	require.True(t, g.Admit("n01", "10.0.0.1").Allowed) // the handler never reports
	require.False(t, g.Admit("n01", "10.0.0.1").Allowed)
	c.add(pendingTimeout)
	require.True(t, g.Admit("n01", "10.0.0.1").Allowed)
}

func TestMemoryIsBounded(t *testing.T) {
	c := newClock()
	g := guard(c, Config{MaxEntries: 50, Window: time.Minute, AccountFreeFailures: 1})
	fail(t, g, "victim", "10.0.0.1")
	fail(t, g, "victim", "10.0.0.1") // locked
	for i := range 1000 {
		fail(t, g, fmt.Sprintf("spray%d", i), fmt.Sprintf("10.1.%d.%d", i/256, i%256))
		require.LessOrEqual(t, g.Len(), 50)
	}
	require.False(t, g.Admit("victim", "10.0.0.9").Allowed, "locked keys are evicted last")

	c.add(time.Hour)
	require.True(t, g.Admit("x", "10.0.0.9").Allowed)
	require.LessOrEqual(t, g.Len(), 2, "idle entries expire")
}

func TestSuccessRemovesIdleEntries(t *testing.T) {
	c := newClock()
	g := guard(c, Config{})
	for i := range 100 {
		login, ip := fmt.Sprintf("s%d", i), fmt.Sprintf("10.0.0.%d", i)
		require.True(t, g.Admit(login, ip).Allowed)
		g.Result(login, ip, true)
	}
	c.add(time.Minute)
	g.Admit("x", "10.0.0.1")
	require.LessOrEqual(t, g.Len(), 2)
}
