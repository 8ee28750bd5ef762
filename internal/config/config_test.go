package config_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/config"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestLoad_Defaults(t *testing.T) {
	cfg, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, config.DefaultHTTPAddr, cfg.HTTPAddr)
	require.Equal(t, config.DefaultDatabaseURL, cfg.DatabaseURL.Reveal())
	require.Equal(t, config.DefaultTemporalAddress, cfg.TemporalAddress)
	require.Equal(t, 7233, cfg.TemporalPort())
	require.Equal(t, "default", cfg.TemporalNamespace)
	require.Equal(t, "vigil", cfg.TaskQueue)
	require.True(t, cfg.AutoMigrate)
	require.True(t, cfg.RegisterSearchAttributes)
	require.Equal(t, slog.LevelInfo, cfg.LogLevel)
	require.Equal(t, "json", cfg.LogFormat)
	require.Equal(t, 20*time.Second, cfg.ShutdownTimeout)
	require.Equal(t, ".vigil", cfg.Dev.DataDir)
	require.Equal(t, 8233, cfg.Dev.UIPort)
	require.Equal(t, "Europe/London", cfg.HospitalTZ.String())
	require.Equal(t, 4, cfg.ActivationPINLength)
	require.Equal(t, 5, cfg.ActivationExpiryDays)
	require.Equal(t, 10, cfg.ActivationMaxAttempts)
	require.Equal(t, 15*time.Minute, cfg.PatientTokenTTL)
	require.Equal(t, 24*time.Hour, cfg.DeviceTokenTTL)
	require.Equal(t, 15*time.Minute, cfg.ClinicianTokenTTL)
	require.Equal(t, []string{"send clinician", "send superclinician"}, cfg.ClinicianLoginGroups)
}

func TestLoad_Overrides(t *testing.T) {
	cfg, err := config.Load(env(map[string]string{
		"VIGIL_HTTP_ADDR":        "127.0.0.1:9090",
		"DATABASE_URL":           "postgres://u:p@db:5432/other?sslmode=disable",
		"TEMPORAL_ADDRESS":       "temporal:7233",
		"TEMPORAL_NAMESPACE":     "vigil-prod",
		"VIGIL_LOG_LEVEL":        "debug",
		"VIGIL_LOG_FORMAT":       "TEXT",
		"VIGIL_SHUTDOWN_TIMEOUT": "45s",
		"VIGIL_AUTO_MIGRATE":     "false",
		"VIGIL_DEV_UI_PORT":      "18233",
		"VIGIL_TEMPORAL_UI_URL":  "https://temporal.example.org/",
	}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9090", cfg.HTTPAddr)
	require.Equal(t, "temporal:7233", cfg.TemporalAddress)
	require.Equal(t, "vigil-prod", cfg.TemporalNamespace)
	require.Equal(t, slog.LevelDebug, cfg.LogLevel)
	require.Equal(t, "text", cfg.LogFormat)
	require.Equal(t, 45*time.Second, cfg.ShutdownTimeout)
	require.False(t, cfg.AutoMigrate)
	require.Equal(t, 18233, cfg.Dev.UIPort)
	require.Equal(t, "https://temporal.example.org", cfg.TemporalUIURL)
}

func TestLoad_BadValueNamesTheVariable(t *testing.T) {
	tests := []struct {
		name     string
		variable string
		value    string
	}{
		{"listen address without port", "VIGIL_HTTP_ADDR", "localhost"},
		{"port out of range", "VIGIL_HTTP_ADDR", ":70000"},
		{"database url with other scheme", "DATABASE_URL", "mysql://db/vigil"},
		{"database url without database", "DATABASE_URL", "postgres://db:5432"},
		{"temporal address without host", "TEMPORAL_ADDRESS", ":7233"},
		{"namespace with a space", "TEMPORAL_NAMESPACE", "my namespace"},
		{"unknown log level", "VIGIL_LOG_LEVEL", "loud"},
		{"unknown log format", "VIGIL_LOG_FORMAT", "xml"},
		{"duration without unit", "VIGIL_SHUTDOWN_TIMEOUT", "20"},
		{"duration below minimum", "VIGIL_SHUTDOWN_TIMEOUT", "10ms"},
		{"not a boolean", "VIGIL_AUTO_MIGRATE", "sometimes"},
		{"not an ip", "VIGIL_DEV_BIND_IP", "localhost"},
		{"ui port zero", "VIGIL_DEV_UI_PORT", "0"},
		{"ui url without scheme", "VIGIL_TEMPORAL_UI_URL", "localhost:8233"},
		{"unknown time zone", "VIGIL_HOSPITAL_TZ", "Mars/Olympus"},
		{"short jwt secret", "VIGIL_JWT_SECRET", "too-short"},
		{"short activation secret", "VIGIL_ACTIVATION_SECRET", "too-short"},
		{"payload key of 16 bytes", "VIGIL_PAYLOAD_KEYS", "k1=" + base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"payload key not base64", "VIGIL_PAYLOAD_KEYS", "k1=%%%%"},
		{"payload key without id", "VIGIL_PAYLOAD_KEYS", base64.StdEncoding.EncodeToString(make([]byte, 32))},
		{"payload key id twice", "VIGIL_PAYLOAD_KEYS", "k1=" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",k1=" + base64.StdEncoding.EncodeToString(make([]byte, 32))},
		{"pin shorter than 4", "VIGIL_ACTIVATION_PIN_LENGTH", "3"},
		{"max attempts zero", "VIGIL_ACTIVATION_MAX_ATTEMPTS", "0"},
		{"patient token over an hour", "VIGIL_PATIENT_TOKEN_TTL", "2h"},
		{"device token over a week", "VIGIL_DEVICE_TOKEN_TTL", "200h"},
		{"no clinician login group", "VIGIL_CLINICIAN_LOGIN_GROUPS", " , "},
		{"metrics address without port", "VIGIL_METRICS_ADDR", "localhost"},
		{"metrics address same as http", "VIGIL_METRICS_ADDR", ":8080"},
		{"trusted proxy not an ip", "VIGIL_TRUSTED_PROXIES", "10.0.0.1,proxy.example.org"},
		{"trusted proxy bad cidr", "VIGIL_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"account free failures zero", "VIGIL_LOGIN_ACCOUNT_FREE_FAILURES", "0"},
		{"account free failures not a number", "VIGIL_LOGIN_ACCOUNT_FREE_FAILURES", "five"},
		{"client free failures zero", "VIGIL_LOGIN_CLIENT_FREE_FAILURES", "0"},
		{"login window without unit", "VIGIL_LOGIN_FAILURE_WINDOW", "15"},
		{"login window over a day", "VIGIL_LOGIN_FAILURE_WINDOW", "25h"},
		{"login back-off below a second", "VIGIL_LOGIN_MAX_BACKOFF", "500ms"},
		{"login back-off over a day", "VIGIL_LOGIN_MAX_BACKOFF", "48h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{tt.variable: tt.value}))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.variable)
			require.NotContains(t, err.Error(), "\n", "the error must fit on one line")
		})
	}
}

func TestLoad_ReportsEveryBadVariableOnOneLine(t *testing.T) {
	_, err := config.Load(env(map[string]string{"VIGIL_HTTP_ADDR": "x", "VIGIL_LOG_LEVEL": "y"}))
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, "VIGIL_HTTP_ADDR")
	require.Contains(t, msg, "VIGIL_LOG_LEVEL")
	require.Equal(t, 1, len(strings.Split(msg, "\n")))
	var cfgErr *config.Error
	require.ErrorAs(t, err, &cfgErr)
	require.Len(t, cfgErr.Problems, 2)
}

func TestDatabaseURL_NeverLogsThePassword(t *testing.T) {
	cfg, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://vigil:s3cret-pw@db:5432/vigil"}))
	require.NoError(t, err)
	require.Equal(t, "postgres://vigil:s3cret-pw@db:5432/vigil", cfg.DatabaseURL.Reveal())

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", cfg, "dsn", cfg.DatabaseURL)
	require.NotContains(t, buf.String(), "s3cret-pw")
	require.Contains(t, buf.String(), "db:5432")
	require.NotContains(t, cfg.DatabaseURL.String(), "s3cret-pw")

	// Nor the JWT secret.
	cfg, err = config.Load(env(map[string]string{"VIGIL_JWT_SECRET": "0123456789abcdef0123456789abcdef-jwt"}))
	require.NoError(t, err)
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", cfg)
	require.NotContains(t, buf.String(), "0123456789abcdef")
	_, err = config.Load(env(map[string]string{"VIGIL_JWT_SECRET": "short-secret"}))
	require.NotContains(t, err.Error(), "short-secret")

	// A bad URL's error must not echo it either.
	_, err = config.Load(env(map[string]string{"DATABASE_URL": "mysql://vigil:s3cret-pw@db/vigil"}))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret-pw")
}

func TestLoad_SecuritySettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(t *testing.T, cfg config.Config)
	}{
		{"defaults", nil, func(t *testing.T, cfg config.Config) {
			require.Empty(t, cfg.MetricsAddr, "/metrics stays on the API address by default")
			require.Empty(t, cfg.TrustedProxies, "no proxy is trusted by default")
			require.Equal(t, 5, cfg.LoginAccountFreeFailures)
			require.Equal(t, 20, cfg.LoginClientFreeFailures)
			require.Equal(t, 15*time.Minute, cfg.LoginFailureWindow)
			require.Equal(t, 15*time.Minute, cfg.LoginMaxBackoff)
		}},
		{"overrides", map[string]string{
			"VIGIL_METRICS_ADDR":                "127.0.0.1:9464",
			"VIGIL_TRUSTED_PROXIES":             " 10.0.0.1, 192.168.0.0/16 ,fd00::/8,, ::1",
			"VIGIL_LOGIN_ACCOUNT_FREE_FAILURES": "3",
			"VIGIL_LOGIN_CLIENT_FREE_FAILURES":  "200",
			"VIGIL_LOGIN_FAILURE_WINDOW":        "1h",
			"VIGIL_LOGIN_MAX_BACKOFF":           "30m",
		}, func(t *testing.T, cfg config.Config) {
			require.Equal(t, "127.0.0.1:9464", cfg.MetricsAddr)
			require.Equal(t, []string{"10.0.0.1", "192.168.0.0/16", "fd00::/8", "::1"}, cfg.TrustedProxies)
			require.Equal(t, 3, cfg.LoginAccountFreeFailures)
			require.Equal(t, 200, cfg.LoginClientFreeFailures)
			require.Equal(t, time.Hour, cfg.LoginFailureWindow)
			require.Equal(t, 30*time.Minute, cfg.LoginMaxBackoff)
		}},
		{"metrics and api both on port 0 for tests", map[string]string{"VIGIL_METRICS_ADDR": "127.0.0.1:0", "VIGIL_HTTP_ADDR": "127.0.0.1:0"}, func(t *testing.T, cfg config.Config) {
			require.Equal(t, "127.0.0.1:0", cfg.MetricsAddr)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(env(tt.env))
			require.NoError(t, err)
			tt.want(t, cfg)
		})
	}
}

func TestLoad_PprofAddr(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    string
		wantErr string
	}{
		{"off by default", "", "", ""},
		{"ipv4 loopback", "127.0.0.1:6060", "127.0.0.1:6060", ""},
		{"ipv6 loopback", "[::1]:6060", "[::1]:6060", ""},
		{"all interfaces refused", ":6060", "", "VIGIL_PPROF_ADDR"},
		{"public address refused", "10.0.0.5:6060", "", "must be a loopback address"},
		{"host name refused", "localhost:6060", "", "must be a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(env(map[string]string{"VIGIL_PPROF_ADDR": tt.value}))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.PprofAddr)
		})
	}
}

func TestLoad_PayloadKeys(t *testing.T) {
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("2"), 32))
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("1"), 32))
	cfg, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Empty(t, cfg.PayloadKeys, "no default: vigil dev keeps its own, api and worker require one")

	cfg, err = config.Load(env(map[string]string{"VIGIL_PAYLOAD_KEYS": "k2=" + k2 + ",k1=" + k1}))
	require.NoError(t, err)
	require.Equal(t, "k2="+k2+",k1="+k1, cfg.PayloadKeys.Reveal())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", cfg)
	require.NotContains(t, buf.String(), k2)
	require.NotContains(t, buf.String(), k1)
	require.Contains(t, buf.String(), `"payload_keys":"[redacted]"`)

	// A bad key is named by its variable and entry, never shown.
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("s"), 31))
	_, err = config.Load(env(map[string]string{"VIGIL_PAYLOAD_KEYS": "k2=" + k2 + ",k1=" + short}))
	require.ErrorContains(t, err, "VIGIL_PAYLOAD_KEYS: entry 2 (key \"k1\"): must decode to 32 bytes, not 31")
	require.NotContains(t, err.Error(), short)
	require.NotContains(t, err.Error(), k2)
}

func TestLoad_MapTileURL(t *testing.T) {
	tests := []struct {
		name, value string
		set         bool
		want        string
		wantErr     bool
	}{
		{name: "default", want: config.DefaultMapTileURL},
		{name: "empty turns tiles off", value: "", set: true, want: ""},
		{name: "blank turns tiles off", value: "  ", set: true, want: ""},
		{name: "own tile server", value: "http://tiles.internal:8080/osm/{z}/{x}/{y}.png", set: true, want: "http://tiles.internal:8080/osm/{z}/{x}/{y}.png"},
		{name: "subdomains and retina", value: "https://{s}.tiles.example.org/{z}/{x}/{y}{r}.png", set: true, want: "https://{s}.tiles.example.org/{z}/{x}/{y}{r}.png"},
		{name: "not http", value: "ftp://tiles.example.org/{z}/{x}/{y}.png", set: true, wantErr: true},
		{name: "no host", value: "https:///{z}/{x}/{y}.png", set: true, wantErr: true},
		{name: "missing y", value: "https://tiles.example.org/{z}/{x}.png", set: true, wantErr: true},
		{name: "unknown placeholder", value: "https://tiles.example.org/{z}/{x}/{y}.png?key={key}", set: true, wantErr: true},
		{name: "quote", value: "https://tiles.example.org/{z}/{x}/{y}.png'", set: true, wantErr: true},
		{name: "credentials", value: "https://u:p@tiles.example.org/{z}/{x}/{y}.png", set: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := map[string]string{}
			if tt.set {
				kv["VIGIL_MAP_TILE_URL"] = tt.value
			}
			cfg, err := config.Load(env(kv))
			if tt.wantErr {
				require.ErrorContains(t, err, "VIGIL_MAP_TILE_URL")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.MapTileURL)
		})
	}
}
