package cleantext_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/cleantext"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name, s, allowed string
		want             bool
	}{
		{"plain", "Ward 3 – Bett 2", "", true},
		{"empty", "", "", true},
		{"NUL", "a\x00b", "", false},
		{"invalid UTF-8", "a\xffb", "", false},
		{"tab refused", "a\tb", "", false},
		{"tab allowed", "a\tb", "\t", true},
		{"newline only where allowed", "a\nb", "\t", false},
		{"newline allowed", "a\r\nb", "\t\n\r", true},
		{"DEL", "a\x7fb", "\t\n\r", false},
		{"C1", "a\u0085b", "\t\n\r", false},
		{"escape", "\x1b[31m", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, cleantext.Valid(tt.s, tt.allowed))
		})
	}
}
