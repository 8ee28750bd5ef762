package credential_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/activation/credential"
)

func TestRandomSecretsHaveTheirAlphabetAndLength(t *testing.T) {
	tests := []struct {
		name     string
		make     func() (string, error)
		alphabet string
		length   int
	}{
		{"pin", func() (string, error) { return credential.NewPIN(4) }, credential.PINAlphabet, 4},
		{"long pin", func() (string, error) { return credential.NewPIN(8) }, credential.PINAlphabet, 8},
		{"activation code", credential.NewActivationCode, credential.CodeAlphabet, 30},
		{"device code", credential.NewDeviceCode, credential.Digits, 9},
		{"authorisation code", credential.NewAuthorisationCode, credential.CodeAlphabet, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 50 {
				s, err := tt.make()
				require.NoError(t, err)
				require.True(t, credential.Valid(s, tt.alphabet, tt.length), s)
				seen[s] = true
			}
			require.Greater(t, len(seen), 45, "secrets repeat")
		})
	}
}

func TestPINAlphabetIsHumanReadable(t *testing.T) {
	for _, c := range "O0L1I" {
		require.NotContains(t, credential.PINAlphabet, string(c))
	}
	// Every allowed character shows up: the draw is not stuck on a subset.
	counts := map[rune]int{}
	for range 400 {
		p, err := credential.NewPIN(4)
		require.NoError(t, err)
		for _, r := range p {
			counts[r]++
		}
	}
	require.Len(t, counts, len(credential.PINAlphabet))
}

func TestPINLengthBounds(t *testing.T) {
	for _, n := range []int{0, 3, 17} {
		_, err := credential.NewPIN(n)
		require.Error(t, err, n)
	}
}

func TestHashVerify(t *testing.T) {
	hash, salt, err := credential.Hash("ABCD")
	require.NoError(t, err)
	require.NotContains(t, hash, "ABCD")
	require.True(t, credential.Verify("ABCD", hash, salt))
	require.False(t, credential.Verify("ABCE", hash, salt))
	require.False(t, credential.Verify("ABCD", hash, "zz"))
	require.False(t, credential.Verify("ABCD", "", salt))

	// A per-record salt: the same secret hashes differently each time.
	hash2, salt2, err := credential.Hash("ABCD")
	require.NoError(t, err)
	require.NotEqual(t, salt, salt2)
	require.NotEqual(t, hash, hash2)

	again, err := credential.HashWithSalt("ABCD", salt)
	require.NoError(t, err)
	require.Equal(t, hash, again)
	_, err = credential.HashWithSalt("ABCD", "abcd")
	require.ErrorIs(t, err, credential.ErrBadSalt)
}

func TestEqual(t *testing.T) {
	require.True(t, credential.Equal("ab", "ab"))
	require.False(t, credential.Equal("ab", "ac"))
	require.False(t, credential.Equal("ab", "abc"))
	require.False(t, credential.Equal("", ""))
}

func TestKeys(t *testing.T) {
	_, err := credential.NewKeys([]byte("short"))
	require.ErrorIs(t, err, credential.ErrWeakKey)

	k, err := credential.NewKeys([]byte(strings.Repeat("k", 32)))
	require.NoError(t, err)
	other, err := credential.NewKeys([]byte(strings.Repeat("o", 32)))
	require.NoError(t, err)

	code := k.PatientActivationCode("a1")
	require.True(t, credential.Valid(code, credential.CodeAlphabet, credential.ActivationCodeLength), code)
	require.Equal(t, code, k.PatientActivationCode("a1"), "derivation is stable")
	require.NotEqual(t, code, k.PatientActivationCode("a2"))
	require.NotEqual(t, code, other.PatientActivationCode("a1"))

	d := k.Digest(code)
	require.Len(t, d, 64)
	require.Equal(t, d, k.Digest(code))
	require.NotEqual(t, d, other.Digest(code))
	require.NotContains(t, d, code)

	require.NotContains(t, fmt.Sprint(k), "kkkk")
	require.NotContains(t, fmt.Sprintf("%#v", k), "kkkk")
}

func TestValid(t *testing.T) {
	tests := []struct {
		s    string
		ok   bool
		name string
	}{
		{"ABCD", true, "ok"},
		{"ABC", false, "short"},
		{"ABCDE", false, "long"},
		{"ABC0", false, "zero not in alphabet"},
		{"abcd", false, "lower case (normalize first)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.ok, credential.Valid(tt.s, credential.PINAlphabet, 4), tt.name)
	}
	require.Equal(t, "ABCD", credential.NormalizeCode(" abcd "))
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, _, err := credential.Hash("ABCD"); err != nil {
			b.Fatal(err)
		}
	}
}
