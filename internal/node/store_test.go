package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

func TestDropJSONNul(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no escape", `{"a":"b"}`, `{"a":"b"}`},
		{"nul dropped", `{"a":"x\u0000y"}`, `{"a":"xy"}`},
		{"escaped backslash before u0000 text kept", `{"a":"C:\\u0000"}`, `{"a":"C:\\u0000"}`},
		{"other escapes kept", `{"a":"\n\u0000\t"}`, `{"a":"\n\t"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, string(dropJSONNul([]byte(tt.in))))
		})
	}
}

func TestDataError(t *testing.T) {
	refused := &pq.Error{Code: "22P05", Message: "unsupported Unicode escape sequence"}
	tests := []struct {
		name     string
		err      error
		wantData bool
	}{
		{"class 22 is refused data", fmt.Errorf("write: %w", refused), true},
		{"a unique violation is not", fmt.Errorf("write: %w", &pq.Error{Code: "23505"}), false},
		{"a connection error is not", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dataError(tt.err)
			var de *DataError
			require.Equal(t, tt.wantData, errors.As(err, &de))
			require.ErrorIs(t, err, tt.err)
			if tt.wantData {
				require.Equal(t, refused.Message, de.Detail)
			}
		})
	}
}
