package actionproof_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/actionproof"
)

func TestKeyring(t *testing.T) {
	oldKey, newKey, other := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32), bytes.Repeat([]byte("x"), 32)
	current, err := actionproof.New(newKey, oldKey)
	require.NoError(t, err)
	before, err := actionproof.New(oldKey)
	require.NoError(t, err)
	stranger, err := actionproof.New(other)
	require.NoError(t, err)
	msg := actionproof.Message("transition", "incident:abc", "acknowledge", "N01")

	tests := []struct {
		name  string
		proof string
		msg   []byte
		want  error
	}{
		{name: "signed with the current key", proof: current.Sign(msg), msg: msg},
		{name: "signed with the previous key (rotation)", proof: before.Sign(msg), msg: msg},
		{name: "missing", proof: "", msg: msg, want: actionproof.ErrMissing},
		{name: "garbage", proof: "hello", msg: msg, want: actionproof.ErrMalformed},
		{name: "another key", proof: stranger.Sign(msg), msg: msg, want: actionproof.ErrUnknownKey},
		{name: "another request", proof: current.Sign(msg), msg: actionproof.Message("transition", "incident:abc", "acknowledge", "C01"), want: actionproof.ErrMismatch},
		{name: "fields shifted", proof: current.Sign(actionproof.Message("t", "ab", "c")), msg: actionproof.Message("t", "a", "bc"), want: actionproof.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := current.Verify(tt.msg, tt.proof)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestNew_RefusesWeakOrRepeatedKeys(t *testing.T) {
	_, err := actionproof.New([]byte("short"))
	require.ErrorContains(t, err, "at least 32 bytes")
	k := bytes.Repeat([]byte("k"), 32)
	_, err = actionproof.New(k, k)
	require.ErrorContains(t, err, "repeats")
}
