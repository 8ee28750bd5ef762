package deploy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/config"
)

// TestComposeVigilEnvironmentIsValidConfig feeds each Vigil service's
// environment through Vigil's own configuration loader, so the stack never
// ships a setting the binary would reject at start (a missing token secret
// stops `vigil api`).
func TestComposeVigilEnvironmentIsValidConfig(t *testing.T) {
	p := loadProject(t)
	for _, name := range []string{"vigil-migrate", "vigil-api", "vigil-worker"} {
		t.Run(name, func(t *testing.T) {
			svc := service(t, p, name)
			cfg, err := config.Load(func(k string) (string, bool) {
				v := svc.Environment[k]
				if v == nil {
					return "", false
				}
				return *v, true
			})
			require.NoError(t, err)
			require.Equal(t, "temporal:7233", cfg.TemporalAddress)
			require.GreaterOrEqual(t, len(cfg.JWTSecret.Reveal()), 32, "vigil api needs VIGIL_JWT_SECRET")
			require.NotEmpty(t, cfg.PayloadKeys, "vigil api and worker need VIGIL_PAYLOAD_KEYS (validated by Load)")
		})
	}
}

// TestComposeWebUIDecodesThroughVigil: the Temporal Web UI decodes the
// encrypted payloads through the API's codec server with the browser's
// credentials, and the API allows the UI's origin.
func TestComposeWebUIDecodesThroughVigil(t *testing.T) {
	p := loadProject(t)
	ui := service(t, p, "temporal-ui")
	require.Equal(t, "http://localhost:8080/codec", env(ui, "TEMPORAL_CODEC_ENDPOINT"))
	require.Equal(t, "true", env(ui, "TEMPORAL_CODEC_INCLUDE_CREDENTIALS"))
	require.Empty(t, env(ui, "TEMPORAL_CODEC_PASS_ACCESS_TOKEN"), "the UI's own token means nothing to Vigil")
	require.NotContains(t, env(ui, "TEMPORAL_CODEC_DEFAULT_ERROR_MESSAGE"), ":", "the UI image pastes it into YAML unquoted")
	require.Equal(t, "http://localhost:8233", env(service(t, p, "vigil-api"), "VIGIL_TEMPORAL_UI_URL"))
	require.Equal(t, env(service(t, p, "vigil-api"), "VIGIL_PAYLOAD_KEYS"), env(service(t, p, "vigil-worker"), "VIGIL_PAYLOAD_KEYS"),
		"api and worker share the keys")
}
