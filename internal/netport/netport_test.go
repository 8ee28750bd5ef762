package netport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRangeStart(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"linux default", "32768\t60999\n", 32768},
		{"narrowed", "40000 50000", 40000},
		{"empty", "", 32768},
		{"garbage", "many ports", 32768},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, parseRangeStart(tt.in))
		})
	}
}

func TestFree_PicksABindablePortBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		port, err := Free("127.0.0.1")
		require.NoError(t, err)
		if ephemeralStart() > lowest+attempts {
			require.GreaterOrEqual(t, port, lowest)
			require.Less(t, port, ephemeralStart())
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err, "the port is free")
		require.NoError(t, l.Close())
	}
}

func TestDistinct_ReturnsDifferentPorts(t *testing.T) {
	ports, err := Distinct("127.0.0.1", 8)
	require.NoError(t, err)
	require.Len(t, ports, 8)
	seen := map[int]bool{}
	for _, p := range ports {
		require.False(t, seen[p], "port %d twice", p)
		seen[p] = true
	}
}
