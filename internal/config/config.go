// Package config loads Vigil's one configuration struct from the environment.
//
// Every setting has a default that suits `vigil dev` on a laptop; production
// deployments override them with environment variables. Load validates every
// value up front, so a bad value stops the process at start with one line that
// names the variable, instead of failing later in the middle of a request.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-health/vigil/internal/payloadcodec"
)

// Config is the whole of Vigil's configuration.
type Config struct {
	// HTTPAddr is the listen address of the REST API.
	HTTPAddr string
	// MetricsAddr, when set, is the listen address of /metrics for the API,
	// worker and dev processes, which then serve /metrics only there and
	// not on HTTPAddr. Empty serves /metrics on HTTPAddr.
	MetricsAddr string
	// PprofAddr, when set, serves Go's runtime profiles (/debug/pprof/) on
	// this loopback address, for measuring where a process spends its time.
	// Only loopback addresses are accepted: profiles reveal memory contents.
	PprofAddr string
	// TrustedProxies are the IPs and CIDRs of reverse proxies whose
	// X-Forwarded-For and X-Real-IP headers name the client. Empty trusts
	// none: the client is the socket's peer.
	TrustedProxies []string
	// LoginThrottle throttles password guessing.
	LoginThrottle
	// DatabaseURL is the Postgres connection URL (the query model).
	DatabaseURL DSN
	// TemporalAddress is the host:port of the Temporal frontend.
	TemporalAddress string
	// TemporalNamespace is the Temporal namespace every workflow runs in.
	TemporalNamespace string
	// TaskQueue is the task queue the worker polls and the API starts workflows on.
	TaskQueue string
	// RegisterSearchAttributes makes the worker add Vigil's search attributes
	// to the namespace at start (idempotent). Turn it off where the worker has
	// no operator rights and an administrator registers them instead.
	RegisterSearchAttributes bool
	// AutoMigrate makes `vigil api` and `vigil worker` apply pending
	// migrations at start (under an advisory lock); `vigil migrate` does it
	// on its own.
	AutoMigrate bool
	// TemporalUIURL is the Temporal Web UI's base URL, used for links from
	// API answers to workflow runs.
	TemporalUIURL string
	// HospitalTZ is the hospital's time zone: on-call shifts (day 08-16,
	// evening 16-24, night 00-08) are in this zone.
	HospitalTZ *time.Location
	// JWTSecret signs staff tokens with HS512 (at least 32 bytes). `vigil
	// api` requires it unless JWTRSAKeyFile is set; `vigil dev` makes a random
	// one when it is empty.
	JWTSecret Secret
	// JWTRSAKeyFile is a PEM RSA private key; when set, tokens are RS256.
	JWTRSAKeyFile string
	// AccessTokenTTL and RefreshTokenTTL bound staff tokens.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// ActivationSecret (32+ bytes) derives patient activation codes and keys
	// the lookup digests of activation codes. `vigil api` requires it; `vigil
	// dev` makes a random one (codes then die with the process). Changing it
	// invalidates every pending activation.
	ActivationSecret Secret
	// PayloadKeys encrypt every payload Vigil writes to Temporal (AES-256-GCM):
	// "id=<base64 of 32 bytes>,id=<base64>", the first encrypting and the
	// others only decrypting (keys rotate by putting a new one first).
	// `vigil api` and `vigil worker` require it; `vigil dev` keeps a random
	// one in its data directory (payload-keys), so it decodes after a restart.
	PayloadKeys Secret
	// Activation shapes patient and device activations and the tokens
	// minted for patients, ward devices and clinicians.
	Activation
	// AutoResolveWait is how long an alert source must report OK before its
	// incident auto-resolves (a new firing cancels it).
	AutoResolveWait time.Duration
	// Slack posts one message per incident, updated in place; empty token
	// disables it. The channel must be an id (C...), the API URL is for
	// tests and demos, the signing secret verifies button clicks.
	SlackBotToken      Secret
	SlackChannel       string
	SlackAPIURL        string
	SlackSigningSecret Secret
	// SMS pages go to a Twilio-compatible API; empty SID disables them.
	SMSURL        string
	SMSAccountSID string
	SMSAuthToken  Secret
	SMSFrom       string
	// DirectoryURL is the service directory capacity watches poll; empty
	// runs no directory worker (`vigil dev` then starts its simulator).
	DirectoryURL string
	// DirectoryAccounts are the directory logins by role, from
	// "ROLE=user:password,ROLE=user:password".
	DirectoryAccounts Secret
	// DirectoryDefaultRole looks services up by id; DirectoryFallbackRole is
	// tried when it finds nothing; DirectorySearchRole is the default role of
	// search watches.
	DirectoryDefaultRole  string
	DirectoryFallbackRole string
	DirectorySearchRole   string
	// DirectoryRate caps directory requests per second across all workers.
	DirectoryRate float64
	// SnapshotRetention is how long capacity snapshots are kept; a daily
	// Temporal Schedule (03:30 London) deletes older ones.
	SnapshotRetention time.Duration
	// CapacitySummaryChannel receives the periodic Slack summary of services
	// below HIGH; empty (or no Slack token) disables it.
	CapacitySummaryChannel string
	// CapacitySummaryEvery is the summary's period.
	CapacitySummaryEvery time.Duration
	// MapTileURL is the tile URL template of the console's capacity map
	// ({z}, {x} and {y}; {s} a subdomain, {r} "@2x" on sharp screens),
	// loaded by the browser; empty shows the map without tiles.
	MapTileURL string
	// BrokerURL is the data broker whose nodes are monitored; empty runs no
	// fleet scan (`vigil dev` then starts its simulator). BrokerAPIKey is
	// its admin key, sent as a bearer token.
	BrokerURL    string
	BrokerAPIKey Secret
	// BrokerScanEvery is the period of the fleet-scan Schedule.
	BrokerScanEvery time.Duration
	// BrokerConcurrency bounds parallel node fetches during a scan.
	BrokerConcurrency int
	// CurrentDWHVersion is the released DWH version nodes are compared with
	// (empty turns the DWH OUTDATED check off); CurrentI2B2Version is quoted
	// in the upgrade mail.
	CurrentDWHVersion  string
	CurrentI2B2Version string
	// SMTP delivers node e-mails; empty host disables e-mail (sends are
	// recorded as failed). SMTPTLS is starttls (required, never downgraded),
	// tls (implicit) or none.
	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword Secret
	SMTPTLS      string
	// MailFrom is the sender address; MailCC are static addresses copied
	// (CC, not To) on every node e-mail.
	MailFrom string
	MailCC   []string
	// LogLevel is the minimum level written to the log.
	LogLevel slog.Level
	// LogFormat is "json" (one object a line) or "text" (logfmt-like).
	LogFormat string
	// ShutdownTimeout bounds how long a stopping process waits for in-flight
	// requests and activities.
	ShutdownTimeout time.Duration
	// Dev holds the settings only `vigil dev` reads.
	Dev DevConfig
}

// LoginThrottle is the sign-in throttling of the API (see package
// loginguard), per process.
type LoginThrottle struct {
	// LoginAccountFreeFailures and LoginClientFreeFailures are the failed
	// sign-ins an account (from anywhere) and a client address (for any
	// account) may have within LoginFailureWindow before each further
	// failure locks them for twice as long as the last, from 1 s up to
	// LoginMaxBackoff.
	LoginAccountFreeFailures int
	LoginClientFreeFailures  int
	LoginFailureWindow       time.Duration
	LoginMaxBackoff          time.Duration
}

// Activation holds the settings of activations (patients' and ward
// devices') and of the tokens minted for patients, ward devices and
// clinicians.
type Activation struct {
	// ActivationPINLength is the length of patient PINs (4 to 16).
	ActivationPINLength int
	// ActivationExpiryDays: an activation lasts to the end (in HospitalTZ) of
	// the Nth day after it was (re-)created.
	ActivationExpiryDays int
	// ActivationMaxAttempts wrong PINs lock an activation.
	ActivationMaxAttempts int
	// PatientTokenTTL, DeviceTokenTTL and ClinicianTokenTTL bound the tokens
	// minted for patients, ward devices and clinicians (via a device).
	PatientTokenTTL   time.Duration
	DeviceTokenTTL    time.Duration
	ClinicianTokenTTL time.Duration
	// ClinicianLoginGroups are the groups (case-insensitive) whose members
	// may log in through a ward device.
	ClinicianLoginGroups []string
}

// DevConfig configures the embedded development stack started by `vigil dev`.
type DevConfig struct {
	// DataDir holds the embedded Temporal server's SQLite file.
	DataDir string
	// BindIP is the address the embedded Temporal frontend and Web UI listen on.
	BindIP string
	// UIPort is the Temporal Web UI port.
	UIPort int
	// Demo seeds the demo hospital's staff and rota and runs the alert
	// generator, so the dev stack shows live incidents out of the box.
	Demo bool
	// DemoAlertsPerMinute is the generator's rate (0 stops it).
	DemoAlertsPerMinute float64
	// DemoPassword is every demo staff member's password.
	DemoPassword Secret
}

// Defaults of the settings, exported so the README and tests can name them.
const (
	DefaultHTTPAddr             = ":8080"
	DefaultDatabaseURL          = "postgres://postgres@127.0.0.1:5432/vigil?sslmode=disable"
	DefaultTemporalAddress      = "127.0.0.1:7233"
	DefaultTemporalNamespace    = "default"
	DefaultTaskQueue            = "vigil"
	DefaultShutdownTimeout      = 20 * time.Second
	DefaultTemporalUIURL        = "http://localhost:8233"
	DefaultHospitalTZ           = "Europe/London"
	DefaultAccessTokenTTL       = 15 * time.Minute
	DefaultAutoResolveWait      = 2 * time.Minute
	DefaultSnapshotRetention    = 30 * 24 * time.Hour
	DefaultCapacitySummaryEvery = time.Hour
	DefaultRefreshTokenTTL      = 12 * time.Hour
	DefaultActivationPINLength  = 4
	DefaultActivationExpiryDays = 5
	DefaultActivationAttempts   = 10
	DefaultPatientTokenTTL      = 15 * time.Minute
	DefaultDeviceTokenTTL       = 24 * time.Hour
	DefaultClinicianTokenTTL    = 15 * time.Minute
	DefaultClinicianGroups      = "send clinician,send superclinician"
	DefaultBrokerScanEvery      = 15 * time.Minute
	DefaultBrokerConcurrency    = 16
	DefaultSMTPPort             = 587
	DefaultDevDataDir           = ".vigil"
	DefaultDevBindIP            = "127.0.0.1"
	DefaultDevUIPort            = 8233
	DefaultDemoPassword         = "vigil-demo"
	DefaultMapTileURL           = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
	DefaultLoginAccountFailures = 5
	DefaultLoginClientFailures  = 20
	DefaultLoginFailureWindow   = 15 * time.Minute
	DefaultLoginMaxBackoff      = 15 * time.Minute
)

// Load builds the configuration from lookup (os.LookupEnv in production, a map
// in tests) and validates it. The error names every offending variable, on one
// line.
func Load(lookup func(string) (string, bool)) (Config, error) {
	r := reader{lookup: lookup}
	cfg := Config{
		HTTPAddr:       r.listenAddr("VIGIL_HTTP_ADDR", DefaultHTTPAddr),
		MetricsAddr:    r.optionalListenAddr("VIGIL_METRICS_ADDR"),
		PprofAddr:      r.loopbackListenAddr("VIGIL_PPROF_ADDR"),
		TrustedProxies: r.proxyList("VIGIL_TRUSTED_PROXIES"),
		LoginThrottle: LoginThrottle{
			LoginAccountFreeFailures: r.intRange("VIGIL_LOGIN_ACCOUNT_FREE_FAILURES", DefaultLoginAccountFailures, 1, 1000),
			LoginClientFreeFailures:  r.intRange("VIGIL_LOGIN_CLIENT_FREE_FAILURES", DefaultLoginClientFailures, 1, 100000),
			LoginFailureWindow:       r.duration("VIGIL_LOGIN_FAILURE_WINDOW", DefaultLoginFailureWindow, time.Second),
			LoginMaxBackoff:          r.duration("VIGIL_LOGIN_MAX_BACKOFF", DefaultLoginMaxBackoff, time.Second),
		},
		DatabaseURL:              r.postgresURL("DATABASE_URL", DefaultDatabaseURL),
		TemporalAddress:          r.hostPort("TEMPORAL_ADDRESS", DefaultTemporalAddress),
		TemporalNamespace:        r.name("TEMPORAL_NAMESPACE", DefaultTemporalNamespace),
		TaskQueue:                r.name("VIGIL_TASK_QUEUE", DefaultTaskQueue),
		RegisterSearchAttributes: r.boolean("VIGIL_REGISTER_SEARCH_ATTRIBUTES", true),
		AutoMigrate:              r.boolean("VIGIL_AUTO_MIGRATE", true),
		TemporalUIURL:            r.httpURL("VIGIL_TEMPORAL_UI_URL", DefaultTemporalUIURL),
		HospitalTZ:               r.location("VIGIL_HOSPITAL_TZ", DefaultHospitalTZ),
		JWTSecret:                r.secret("VIGIL_JWT_SECRET", 32),
		JWTRSAKeyFile:            r.raw("VIGIL_JWT_RSA_KEY_FILE", ""),
		AccessTokenTTL:           r.duration("VIGIL_ACCESS_TOKEN_TTL", DefaultAccessTokenTTL, time.Minute),
		RefreshTokenTTL:          r.duration("VIGIL_REFRESH_TOKEN_TTL", DefaultRefreshTokenTTL, time.Minute),
		ActivationSecret:         r.secret("VIGIL_ACTIVATION_SECRET", 32),
		PayloadKeys:              r.payloadKeys("VIGIL_PAYLOAD_KEYS"),
		Activation: Activation{
			ActivationPINLength:   r.intRange("VIGIL_ACTIVATION_PIN_LENGTH", DefaultActivationPINLength, 4, 16),
			ActivationExpiryDays:  r.intRange("VIGIL_ACTIVATION_EXPIRY_DAYS", DefaultActivationExpiryDays, 1, 30),
			ActivationMaxAttempts: r.intRange("VIGIL_ACTIVATION_MAX_ATTEMPTS", DefaultActivationAttempts, 1, 100),
			PatientTokenTTL:       r.duration("VIGIL_PATIENT_TOKEN_TTL", DefaultPatientTokenTTL, time.Minute),
			DeviceTokenTTL:        r.duration("VIGIL_DEVICE_TOKEN_TTL", DefaultDeviceTokenTTL, time.Minute),
			ClinicianTokenTTL:     r.duration("VIGIL_CLINICIAN_TOKEN_TTL", DefaultClinicianTokenTTL, time.Minute),
			ClinicianLoginGroups:  groupList(r.raw("VIGIL_CLINICIAN_LOGIN_GROUPS", DefaultClinicianGroups)),
		},
		AutoResolveWait:        r.duration("VIGIL_AUTO_RESOLVE_WAIT", DefaultAutoResolveWait, time.Second),
		SlackBotToken:          r.secret("VIGIL_SLACK_BOT_TOKEN", 1),
		SlackChannel:           r.raw("VIGIL_SLACK_CHANNEL", ""),
		SlackAPIURL:            r.raw("VIGIL_SLACK_API_URL", ""),
		SlackSigningSecret:     r.secret("VIGIL_SLACK_SIGNING_SECRET", 1),
		SMSURL:                 r.raw("VIGIL_SMS_URL", "https://api.twilio.com"),
		SMSAccountSID:          r.raw("VIGIL_SMS_ACCOUNT_SID", ""),
		SMSAuthToken:           r.secret("VIGIL_SMS_AUTH_TOKEN", 1),
		SMSFrom:                r.raw("VIGIL_SMS_FROM", ""),
		DirectoryURL:           strings.TrimRight(r.raw("VIGIL_DIRECTORY_URL", ""), "/"),
		DirectoryAccounts:      r.secret("VIGIL_DIRECTORY_ACCOUNTS", 1),
		DirectoryDefaultRole:   r.name("VIGIL_DIRECTORY_DEFAULT_ROLE", "PATHWAYS_REFERRAL"),
		DirectoryFallbackRole:  r.name("VIGIL_DIRECTORY_FALLBACK_ROLE", "DIGITAL_REFERRAL"),
		DirectorySearchRole:    r.name("VIGIL_DIRECTORY_SEARCH_ROLE", "CAPMON"),
		DirectoryRate:          r.rate("VIGIL_DIRECTORY_RATE", 2),
		SnapshotRetention:      r.duration("VIGIL_SNAPSHOT_RETENTION", DefaultSnapshotRetention, time.Hour),
		CapacitySummaryChannel: r.raw("VIGIL_CAPACITY_SUMMARY_CHANNEL", ""),
		CapacitySummaryEvery:   r.duration("VIGIL_CAPACITY_SUMMARY_EVERY", DefaultCapacitySummaryEvery, time.Minute),
		MapTileURL:             r.tileURL("VIGIL_MAP_TILE_URL", DefaultMapTileURL),
		BrokerURL:              strings.TrimRight(r.raw("VIGIL_BROKER_URL", ""), "/"),
		BrokerAPIKey:           r.secret("VIGIL_BROKER_API_KEY", 1),
		BrokerScanEvery:        r.duration("VIGIL_BROKER_SCAN_EVERY", DefaultBrokerScanEvery, time.Minute),
		BrokerConcurrency:      r.intRange("VIGIL_BROKER_CONCURRENCY", DefaultBrokerConcurrency, 1, 256),
		CurrentDWHVersion:      r.raw("VIGIL_DWH_CURRENT_VERSION", ""),
		CurrentI2B2Version:     r.raw("VIGIL_I2B2_CURRENT_VERSION", ""),
		SMTPHost:               r.raw("VIGIL_SMTP_HOST", ""),
		SMTPPort:               r.port("VIGIL_SMTP_PORT", DefaultSMTPPort),
		SMTPUsername:           r.raw("VIGIL_SMTP_USERNAME", ""),
		SMTPPassword:           r.secret("VIGIL_SMTP_PASSWORD", 1),
		SMTPTLS:                r.oneOf("VIGIL_SMTP_TLS", "starttls", "starttls", "tls", "none"),
		MailFrom:               r.raw("VIGIL_MAIL_FROM", ""),
		MailCC:                 r.addressList("VIGIL_MAIL_CC"),
		LogLevel:               r.logLevel("VIGIL_LOG_LEVEL", slog.LevelInfo),
		LogFormat:              r.oneOf("VIGIL_LOG_FORMAT", "json", "json", "text"),
		ShutdownTimeout:        r.duration("VIGIL_SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, time.Second),
		Dev: DevConfig{
			DataDir: r.nonEmpty("VIGIL_DEV_DATA_DIR", DefaultDevDataDir),
			BindIP:  r.ip("VIGIL_DEV_BIND_IP", DefaultDevBindIP),
			UIPort:  r.port("VIGIL_DEV_UI_PORT", DefaultDevUIPort),

			Demo:                r.boolean("VIGIL_DEMO", true),
			DemoAlertsPerMinute: r.rate("VIGIL_DEMO_ALERTS_PER_MINUTE", 4),
			DemoPassword:        Secret(r.raw("VIGIL_DEMO_PASSWORD", DefaultDemoPassword)),
		},
	}
	if cfg.SlackBotToken != "" && !strings.HasPrefix(cfg.SlackChannel, "C") && !strings.HasPrefix(cfg.SlackChannel, "G") {
		r.fail("VIGIL_SLACK_CHANNEL", cfg.SlackChannel, "must be a channel id such as C0123456789 when VIGIL_SLACK_BOT_TOKEN is set")
	}
	if cfg.CapacitySummaryChannel != "" && !strings.HasPrefix(cfg.CapacitySummaryChannel, "C") && !strings.HasPrefix(cfg.CapacitySummaryChannel, "G") {
		r.fail("VIGIL_CAPACITY_SUMMARY_CHANNEL", cfg.CapacitySummaryChannel, "must be a channel id such as C0123456789")
	}
	if cfg.SMSAccountSID != "" && (cfg.SMSAuthToken == "" || !e164.MatchString(cfg.SMSFrom)) {
		r.errs = append(r.errs, errors.New("VIGIL_SMS_AUTH_TOKEN and VIGIL_SMS_FROM (E.164, e.g. +447700900000) are required with VIGIL_SMS_ACCOUNT_SID"))
	}
	if _, err := ParseAccounts(cfg.DirectoryAccounts.Reveal()); err != nil {
		r.errs = append(r.errs, fmt.Errorf("VIGIL_DIRECTORY_ACCOUNTS: %w", err))
	}
	if cfg.BrokerURL != "" {
		if u, err := url.Parse(cfg.BrokerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("VIGIL_BROKER_URL", cfg.BrokerURL, "must be an http(s) URL")
		}
		if cfg.BrokerAPIKey == "" {
			r.errs = append(r.errs, errors.New("VIGIL_BROKER_API_KEY is required with VIGIL_BROKER_URL"))
		}
	}
	if cfg.SMTPHost != "" {
		if _, err := mail.ParseAddress(cfg.MailFrom); err != nil {
			r.fail("VIGIL_MAIL_FROM", cfg.MailFrom, "must be an e-mail address when VIGIL_SMTP_HOST is set")
		}
		if (cfg.SMTPUsername == "") != (cfg.SMTPPassword == "") {
			r.errs = append(r.errs, errors.New("VIGIL_SMTP_USERNAME and VIGIL_SMTP_PASSWORD go together"))
		}
	}
	if cfg.PatientTokenTTL > time.Hour || cfg.ClinicianTokenTTL > time.Hour {
		r.errs = append(r.errs, errors.New("VIGIL_PATIENT_TOKEN_TTL and VIGIL_CLINICIAN_TOKEN_TTL must be at most 1h"))
	}
	if cfg.DeviceTokenTTL > 7*24*time.Hour {
		r.fail("VIGIL_DEVICE_TOKEN_TTL", cfg.DeviceTokenTTL.String(), "must be at most 168h")
	}
	if len(cfg.ClinicianLoginGroups) == 0 {
		r.fail("VIGIL_CLINICIAN_LOGIN_GROUPS", "", "must name at least one group")
	}
	if cfg.LoginMaxBackoff > 24*time.Hour {
		r.fail("VIGIL_LOGIN_MAX_BACKOFF", cfg.LoginMaxBackoff.String(), "must be at most 24h")
	}
	if cfg.LoginFailureWindow > 24*time.Hour {
		r.fail("VIGIL_LOGIN_FAILURE_WINDOW", cfg.LoginFailureWindow.String(), "must be at most 24h")
	}
	if cfg.MetricsAddr != "" && cfg.MetricsAddr == cfg.HTTPAddr && !strings.HasSuffix(cfg.MetricsAddr, ":0") {
		r.fail("VIGIL_METRICS_ADDR", cfg.MetricsAddr, "must differ from VIGIL_HTTP_ADDR (leave it empty to serve /metrics there)")
	}
	if cfg.DirectoryRate <= 0 {
		r.fail("VIGIL_DIRECTORY_RATE", "0", "must be above 0")
	}
	if len(r.errs) > 0 {
		return Config{}, &Error{Problems: r.errs}
	}
	return cfg, nil
}

// LogValue implements slog.LogValuer: the configuration as it is safe to log,
// with the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("pprof_addr", c.PprofAddr),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.Int("login_account_free_failures", c.LoginAccountFreeFailures),
		slog.Int("login_client_free_failures", c.LoginClientFreeFailures),
		slog.String("login_failure_window", c.LoginFailureWindow.String()),
		slog.String("login_max_backoff", c.LoginMaxBackoff.String()),
		slog.Any("database_url", c.DatabaseURL),
		slog.String("temporal_address", c.TemporalAddress),
		slog.String("temporal_namespace", c.TemporalNamespace),
		slog.String("task_queue", c.TaskQueue),
		slog.Bool("auto_migrate", c.AutoMigrate),
		slog.String("temporal_ui_url", c.TemporalUIURL),
		slog.String("hospital_tz", c.HospitalTZ.String()),
		slog.Any("jwt_secret", c.JWTSecret),
		slog.Any("activation_secret", c.ActivationSecret),
		slog.Any("payload_keys", c.PayloadKeys),
		slog.String("jwt_rsa_key_file", c.JWTRSAKeyFile),
		slog.Bool("slack", c.SlackBotToken != ""),
		slog.String("slack_channel", c.SlackChannel),
		slog.Bool("sms", c.SMSAccountSID != ""),
		slog.String("directory_url", c.DirectoryURL),
		slog.String("snapshot_retention", c.SnapshotRetention.String()),
		slog.String("capacity_summary_channel", c.CapacitySummaryChannel),
		slog.String("map_tile_url", c.MapTileURL),
		slog.String("broker_url", c.BrokerURL),
		slog.Any("broker_api_key", c.BrokerAPIKey),
		slog.String("broker_scan_every", c.BrokerScanEvery.String()),
		slog.String("smtp_host", c.SMTPHost),
		slog.Any("smtp_password", c.SMTPPassword),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("log_format", c.LogFormat),
	)
}

// TemporalPort is the port of TemporalAddress; `vigil dev` binds its embedded
// frontend there.
func (c Config) TemporalPort() int {
	_, port, _ := net.SplitHostPort(c.TemporalAddress)
	n, _ := strconv.Atoi(port)
	return n
}

// DSN is a Postgres connection URL. It logs and prints with its password
// redacted; call Reveal to get the usable value.
type DSN string

// Reveal returns the URL with its password, for opening a connection.
func (d DSN) Reveal() string { return string(d) }

// String returns the URL with any password replaced by "xxxxx".
func (d DSN) String() string {
	u, err := url.Parse(string(d))
	if err != nil {
		return "[unparseable url]"
	}
	return u.Redacted()
}

// LogValue implements slog.LogValuer.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalText keeps the password out of any JSON or YAML rendering.
func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// Account is one directory login.
type Account struct {
	Username string
	Password string
}

// ParseAccounts reads "ROLE=user:password,ROLE=user:password". Errors never
// repeat a password.
func ParseAccounts(v string) (map[string]Account, error) {
	out := map[string]Account{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for i, part := range strings.Split(v, ",") {
		role, cred, ok := strings.Cut(strings.TrimSpace(part), "=")
		user, pass, ok2 := strings.Cut(cred, ":")
		if !ok || !ok2 || role == "" || user == "" || pass == "" {
			return nil, fmt.Errorf("entry %d must look like ROLE=user:password", i+1)
		}
		out[role] = Account{Username: user, Password: pass}
	}
	return out, nil
}

// Error lists every invalid variable. Its message is a single line, so a
// process that fails to start says exactly what to fix.
type Error struct {
	Problems []error
}

// Error implements error.
func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return e.Problems }

// Secret is a configuration value that must never be printed or logged.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps the secret out of any JSON or YAML rendering.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// reader reads and checks variables, collecting one error per bad variable.
type reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *reader) raw(name, def string) string {
	v, ok := r.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	return strings.TrimSpace(v)
}

func (r *reader) fail(name, value, why string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", name, value, why))
}

func (r *reader) nonEmpty(name, def string) string {
	return r.raw(name, def)
}

func (r *reader) name(name, def string) string {
	v := r.raw(name, def)
	for _, ch := range v {
		if ch <= ' ' || ch == 0x7f {
			r.fail(name, v, "must not contain spaces or control characters")
			return def
		}
	}
	return v
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(r.raw(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.raw(name, strconv.FormatBool(def))
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, v, "must be true or false")
		return def
	}
	return b
}

func (r *reader) duration(name string, def, minimum time.Duration) time.Duration {
	v := r.raw(name, def.String())
	d, err := time.ParseDuration(v)
	if err != nil {
		r.fail(name, v, "must be a duration such as 30s or 5m")
		return def
	}
	if d < minimum {
		r.fail(name, v, "must be at least "+minimum.String())
		return def
	}
	return d
}

// intRange reads an integer in [lo, hi].
func (r *reader) intRange(name string, def, lo, hi int) int {
	v, ok := r.lookup(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

// addressList reads comma-separated e-mail addresses.
func (r *reader) addressList(name string) []string {
	v, _ := r.lookup(name)
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, err := mail.ParseAddress(part)
		if err != nil {
			r.fail(name, part, "must be comma-separated e-mail addresses")
			continue
		}
		out = append(out, a.Address)
	}
	return out
}

func (r *reader) port(name string, def int) int {
	v := r.raw(name, strconv.Itoa(def))
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		r.fail(name, v, "must be a port number from 1 to 65535")
		return def
	}
	return p
}

func (r *reader) ip(name, def string) string {
	v := r.raw(name, def)
	if net.ParseIP(v) == nil {
		r.fail(name, v, "must be an IP address such as 127.0.0.1 or 0.0.0.0")
		return def
	}
	return v
}

func (r *reader) listenAddr(name, def string) string {
	v := r.raw(name, def)
	// Port 0 asks the kernel for a free port (tests use it).
	if _, port, err := net.SplitHostPort(v); err != nil || (port != "0" && !validPort(port)) {
		r.fail(name, v, "must be a listen address such as :8080 or 127.0.0.1:8080")
		return def
	}
	return v
}

// optionalListenAddr reads a listen address that may be left empty.
func (r *reader) optionalListenAddr(name string) string {
	if r.raw(name, "") == "" {
		return ""
	}
	return r.listenAddr(name, "")
}

// loopbackListenAddr reads an optional listen address that must name a
// loopback IP, such as 127.0.0.1:6060.
func (r *reader) loopbackListenAddr(name string) string {
	v := r.optionalListenAddr(name)
	if v == "" {
		return ""
	}
	host, _, _ := net.SplitHostPort(v)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		r.fail(name, v, "must be a loopback address such as 127.0.0.1:6060")
		return ""
	}
	return v
}

// proxyList reads comma-separated IPs and CIDRs (IPv4 or IPv6).
func (r *reader) proxyList(name string) []string {
	v, _ := r.lookup(name)
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(part); err != nil && net.ParseIP(part) == nil {
			r.fail(name, part, "must be comma-separated IP addresses or CIDRs such as 10.0.0.0/8")
			continue
		}
		out = append(out, part)
	}
	return out
}

func (r *reader) hostPort(name, def string) string {
	v := r.raw(name, def)
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" || !validPort(port) {
		r.fail(name, v, "must be host:port such as 127.0.0.1:7233")
		return def
	}
	return v
}

func (r *reader) postgresURL(name, def string) DSN {
	v := r.raw(name, def)
	u, err := url.Parse(v)
	switch {
	case err != nil:
		r.errs = append(r.errs, fmt.Errorf("%s: not a URL", name))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		r.errs = append(r.errs, fmt.Errorf("%s: must start with postgres:// (got scheme %q)", name, u.Scheme))
	case u.Host == "":
		r.errs = append(r.errs, fmt.Errorf("%s: must name a host", name))
	case strings.Trim(u.Path, "/") == "":
		r.errs = append(r.errs, fmt.Errorf("%s: must name a database, as in postgres://host:5432/vigil", name))
	default:
		return DSN(v)
	}
	return DSN(def)
}

func (r *reader) httpURL(name, def string) string {
	v := strings.TrimRight(r.raw(name, def), "/")
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, v, "must be an http(s) URL such as http://localhost:8233")
		return def
	}
	return v
}

// tileURL reads a map tile URL template: an http(s) URL with {z}, {x} and
// {y}, whose host may hold {s}. Set but empty means no tiles.
func (r *reader) tileURL(name, def string) string {
	v, ok := r.lookup(name)
	if !ok {
		return def
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	sample := strings.NewReplacer("{s}", "a", "{z}", "1", "{x}", "1", "{y}", "1", "{r}", "").Replace(v)
	u, err := url.Parse(sample)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		!strings.Contains(v, "{z}") || !strings.Contains(v, "{x}") || !strings.Contains(v, "{y}") ||
		strings.ContainsAny(sample, `{}\"' <>`) {
		r.fail(name, v, "must be an http(s) URL template with {z}, {x} and {y}, such as "+DefaultMapTileURL)
		return def
	}
	return v
}

// secret reads an optional secret of at least minLen bytes; the error never
// echoes the value.
func (r *reader) secret(name string, minLen int) Secret {
	v := r.raw(name, "")
	if v != "" && len(v) < minLen {
		r.errs = append(r.errs, fmt.Errorf("%s: must be at least %d bytes", name, minLen))
		return ""
	}
	return Secret(v)
}

// payloadKeys reads optional payload keys (payloadcodec.ParseKeys); the
// error names the entry and its key id, never key material.
func (r *reader) payloadKeys(name string) Secret {
	v := r.raw(name, "")
	if v == "" {
		return ""
	}
	if _, err := payloadcodec.ParseKeys(v); err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %w", name, err))
		return ""
	}
	return Secret(v)
}

func (r *reader) rate(name string, def float64) float64 {
	v := r.raw(name, strconv.FormatFloat(def, 'f', -1, 64))
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 6000 {
		r.fail(name, v, "must be a number from 0 to 6000")
		return def
	}
	return f
}

func (r *reader) location(name, def string) *time.Location {
	v := r.raw(name, def)
	loc, err := time.LoadLocation(v)
	if err != nil {
		r.fail(name, v, "must be an IANA time zone such as Europe/London")
		loc, _ = time.LoadLocation(def)
	}
	return loc
}

func (r *reader) logLevel(name string, def slog.Level) slog.Level {
	v := r.raw(name, def.String())
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, v, "must be debug, info, warn or error")
		return def
	}
	return lvl
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}

// groupList splits a comma-separated list of group names, lower-cased.
func groupList(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.ToLower(strings.TrimSpace(part)); part != "" {
			out = append(out, part)
		}
	}
	return out
}
