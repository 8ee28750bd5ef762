package broker_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node/broker"
)

func TestCommonName(t *testing.T) {
	tests := []struct{ dn, want string }{
		{"CN=Evangelisches Krankenhaus Lindenau,O=AKTIN,C=DE", "Evangelisches Krankenhaus Lindenau"},
		{"O=AKTIN, CN=Klinikum Am Hafen, C=DE", "Klinikum Am Hafen"},
		{`CN=Klinik Nord\, Haus 2,O=AKTIN`, "Klinik Nord, Haus 2"},
		{`cn=a\=b\\c`, `a=b\c`},
		{"O=AKTIN,C=DE", ""},
		{"CN=,O=AKTIN", ""},
		{"", ""},
		{"not a dn", ""},
	}
	for _, tt := range tests {
		t.Run(tt.dn, func(t *testing.T) {
			require.Equal(t, tt.want, broker.CommonName(tt.dn))
		})
	}
}
