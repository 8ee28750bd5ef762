package watch_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch"
)

// TestPayloadShapes keeps Observation and Change byte-compatible with the
// payloads recorded in workflow histories (workflows/testdata/watch.json).
func TestPayloadShapes(t *testing.T) {
	at := time.Date(2026, 11, 22, 5, 11, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "observation",
			v: watch.Observation{ServiceStatus: watch.ServiceStatus{ServiceID: "2000001", Name: "Leeds ED", Region: "Yorkshire",
				Type: "Emergency Department", Capacity: "HIGH", RAG: "GREEN"}, UpdatedBy: "nurse.a", UpdatedAt: at},
			want: `{"ServiceID":"2000001","Name":"Leeds ED","Region":"Yorkshire","Type":"Emergency Department",` +
				`"Capacity":"HIGH","RAG":"GREEN","UpdatedBy":"nurse.a","UpdatedAt":"2026-11-22T05:11:00Z"}`,
		},
		{
			name: "change, whose Announce stays in the workflow",
			v: watch.Change{Kind: watch.ChangeStatus, ServiceID: "2000001", Name: "Leeds ED", Type: "Emergency Department",
				Region: "Yorkshire", Previous: "HIGH", PrevRAG: "GREEN", Capacity: "LOW", RAG: "AMBER", ChangedBy: "nurse.b",
				ChangedAt: at, Announce: true},
			want: `{"Kind":"change","ServiceID":"2000001","Name":"Leeds ED","Type":"Emergency Department","Region":"Yorkshire",` +
				`"Previous":"HIGH","PrevRAG":"GREEN","Capacity":"LOW","RAG":"AMBER","ChangedBy":"nurse.b","ChangedAt":"2026-11-22T05:11:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}
