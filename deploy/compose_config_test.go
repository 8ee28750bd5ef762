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
		})
	}
}
