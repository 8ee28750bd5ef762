package pgnotify_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/pgnotify"
)

// TestAnnounceWakesTheSubscribersOfItsKey checks the in-process fan-out of a
// bus without a database (which polls as well, every 2 seconds).
func TestAnnounceWakesTheSubscribersOfItsKey(t *testing.T) {
	bus := pgnotify.New("", nil, slog.New(slog.DiscardHandler), "staff_notifications")
	tests := []struct {
		name            string
		channel, key    string
		announceChannel string
		announceKey     string
		wantWokenAtOnce bool
	}{
		{"same channel and key", "staff_notifications", "N01", "staff_notifications", "N01", true},
		{"another key", "staff_notifications", "N01", "staff_notifications", "N02", false},
		{"another channel", "messages", "N01", "staff_notifications", "N01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wake, unsubscribe := bus.Subscribe(tt.channel, tt.key)
			defer unsubscribe()
			bus.Announce(tt.announceChannel, tt.announceKey)
			select {
			case <-wake:
				require.True(t, tt.wantWokenAtOnce, "woken by another key's announcement")
			case <-time.After(100 * time.Millisecond):
				require.False(t, tt.wantWokenAtOnce, "not woken by its announcement")
			}
		})
	}
}
