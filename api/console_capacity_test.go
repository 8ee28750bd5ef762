package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTileOrigin(t *testing.T) {
	tests := []struct{ template, want string }{
		{"https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"},
		{"http://127.0.0.1:43121/tiles/{z}/{x}/{y}.png", "http://127.0.0.1:43121"},
		{"https://{s}.tile.example.org/{z}/{x}/{y}{r}.png", "https://*.tile.example.org"},
		{"", ""},
		{"not a url", ""},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			require.Equal(t, tt.want, tileOrigin(tt.template))
		})
	}
}

func TestCapacityCSP(t *testing.T) {
	s := &Server{Deps: Deps{MapTileURL: "https://tile.openstreetmap.org/{z}/{x}/{y}.png"}}
	require.Equal(t, "default-src 'none'; img-src 'self' data: https://tile.openstreetmap.org; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", s.capacityCSP())
	require.Contains(t, (&Server{}).capacityCSP(), "img-src 'self' data:;")
}
