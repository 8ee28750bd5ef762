package csvsafe_test

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/csvsafe"
)

func TestCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"2026-07-15T10:00:00Z", "2026-07-15T10:00:00Z"},
		{"12", "12"},
		{"a=b", "a=b"},
		{"error: cvc-id.2: value '=1'", "error: cvc-id.2: value '=1'"},
		// Formulas and their starts.
		{`=HYPERLINK("http://x","y")`, `'=HYPERLINK("http://x","y")`},
		{"=1+1", "'=1+1"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"\t=1+1", "'\t=1+1"},
		{"\r=1+1", "'\r=1+1"},
		{"+", "'+"},
		{"--1", "'--1"},
		{"-1e", "'-1e"},
		{"-0x10", "'-0x10"},
		{"- 3", "'- 3"},
		{"-3\n=1", "'-3\n=1"},
		// Plain numbers are data.
		{"-3", "-3"},
		{"-0.5", "-0.5"},
		{"+7", "+7"},
		{"-.5", "-.5"},
		{"-", "-"},
		{"-1.5e-3", "-1.5e-3"},
		{"'already quoted", "'already quoted"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, csvsafe.Cell(tt.in))
		})
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := csvsafe.NewWriter(&buf)
	w.Comma = ';'
	record := []string{"=1+1", "-3", "@x", "ok;semi", "+cmd|' /C calc'!A0"}
	require.NoError(t, w.Write(record))
	require.Equal(t, []string{"=1+1", "-3", "@x", "ok;semi", "+cmd|' /C calc'!A0"}, record, "the caller's record is untouched")
	require.NoError(t, w.WriteAll([][]string{{"\tx", "y"}}))
	require.NoError(t, w.Error())

	r := csv.NewReader(&buf)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	got, err := r.ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"'=1+1", "-3", "'@x", "ok;semi", "'+cmd|' /C calc'!A0"},
		{"'\tx", "y"},
	}, got)
}
