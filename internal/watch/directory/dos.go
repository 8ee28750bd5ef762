package directory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	// The directory's timestamps are Europe/London wall-clock times; embed
	// the zone database so parsing does not depend on the host's tzdata.
	_ "time/tzdata"

	"github.com/vigil-health/vigil/internal/redact"
)

// DoS REST API paths, relative to DoSConfig.BaseURL.
const (
	dosSearchPath = "/app/controllers/api/v1.0/services/byServiceType/"
	dosByIDPath   = "/app/controllers/api/v1.0/services/byServiceId/"
)

// Defaults of DoSConfig.
const (
	// DefaultDoSTimeout is the HTTP timeout when DoSConfig.HTTP is nil.
	DefaultDoSTimeout = 10 * time.Second
	// DefaultDoSRatePerSecond is the client-side request rate when
	// DoSConfig.RatePerSecond is zero ("no more than 2 requests per second").
	DefaultDoSRatePerSecond = 2.0
	// MaxDoSResponseBytes is the most of a response body the client reads.
	MaxDoSResponseBytes = 8 << 20
)

// DirectoryZone is the zone the directory's dates and times are written in.
const DirectoryZone = "Europe/London"

// Account is one directory login. Its String, GoString, LogValue and
// MarshalJSON redact the password, so an Account (or a DoSConfig holding
// it) can be logged or printed safely.
type Account struct {
	Username string
	Password string
}

// String returns the username with the password redacted.
func (a Account) String() string {
	return fmt.Sprintf("Account{Username:%q, Password:%s}", a.Username, redact.Secret(a.Password))
}

// GoString is String, so %#v redacts too.
func (a Account) GoString() string { return a.String() }

// LogValue implements slog.LogValuer without the password.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", a.Username),
		slog.String("password", redact.Secret(a.Password)),
	)
}

// MarshalJSON writes the username with the password redacted, so JSON
// loggers and debug dumps of a DoSConfig do not leak it.
func (a Account) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{a.Username, redact.Secret(a.Password)})
}

// DoSConfig configures a DoSClient.
type DoSConfig struct {
	// BaseURL is the directory's root, e.g. https://uec.dos.example.
	BaseURL string
	// Accounts holds the login of each search role, e.g. "CAPMON".
	Accounts map[string]Account
	// DefaultRole is the role of searches without SearchQuery.Role and of
	// the first lookup by id. Required; must be a key of Accounts.
	DefaultRole string
	// FallbackRole, when set, is the second account a lookup by id tries
	// when the default account sees no such service.
	FallbackRole string
	// HTTP is the client to use; nil means one with a DefaultDoSTimeout.
	HTTP *http.Client
	// RatePerSecond limits this client's requests; 0 means
	// DefaultDoSRatePerSecond. The limit is shared by all its calls.
	RatePerSecond float64
}

// DoSClient is a Directory backed by the DoS REST API. It is safe for
// concurrent use.
type DoSClient struct {
	base         string
	accounts     map[string]Account
	defaultRole  string
	fallbackRole string
	http         *http.Client
	limiter      *limiter
	zone         *time.Location
}

var _ Directory = (*DoSClient)(nil)

// NewDoSClient validates cfg and returns a client.
func NewDoSClient(cfg DoSConfig) (*DoSClient, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("directory: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("directory: base URL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.DefaultRole == "" {
		return nil, errors.New("directory: DefaultRole is required")
	}
	accounts := make(map[string]Account, len(cfg.Accounts))
	for role, acc := range cfg.Accounts {
		if acc.Username == "" {
			return nil, fmt.Errorf("directory: account of role %q has no username", role)
		}
		accounts[role] = acc
	}
	for _, role := range []string{cfg.DefaultRole, cfg.FallbackRole} {
		if _, ok := accounts[role]; role != "" && !ok {
			return nil, fmt.Errorf("directory: no account for role %q", role)
		}
	}
	if cfg.RatePerSecond < 0 || math.IsNaN(cfg.RatePerSecond) || math.IsInf(cfg.RatePerSecond, 0) {
		return nil, fmt.Errorf("directory: invalid RatePerSecond %v", cfg.RatePerSecond)
	}
	rate := cmp.Or(cfg.RatePerSecond, DefaultDoSRatePerSecond)
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultDoSTimeout}
	}
	zone, err := time.LoadLocation(DirectoryZone)
	if err != nil {
		return nil, fmt.Errorf("directory: load zone: %w", err)
	}
	fallback := cfg.FallbackRole
	if fallback == cfg.DefaultRole {
		fallback = ""
	}
	return &DoSClient{
		base:         strings.TrimRight(u.String(), "/"),
		accounts:     accounts,
		defaultRole:  cfg.DefaultRole,
		fallbackRole: fallback,
		http:         hc,
		limiter:      newLimiter(rate),
		zone:         zone,
	}, nil
}

// Search runs q against the byServiceType endpoint as q.Role (or the
// default role). An empty q.GP is sent as "0".
func (c *DoSClient) Search(ctx context.Context, q SearchQuery) ([]Service, error) {
	role := q.Role
	if role == "" {
		role = c.defaultRole
	}
	acc, ok := c.accounts[role]
	if !ok {
		return nil, fmt.Errorf("directory: search: no account for role %q", role)
	}
	postcode := strings.TrimSpace(q.Postcode)
	switch {
	case postcode == "":
		return nil, errors.New("directory: search: postcode is required")
	case len(q.ServiceTypes) == 0:
		return nil, errors.New("directory: search: at least one service type is required")
	case q.DistanceMiles < 0:
		return nil, fmt.Errorf("directory: search: negative distance %d", q.DistanceMiles)
	case q.ResultsLimit <= 0:
		return nil, fmt.Errorf("directory: search: results limit must be positive, got %d", q.ResultsLimit)
	}
	gp := q.GP
	if gp == "" {
		gp = "0"
	}
	types := make([]string, len(q.ServiceTypes))
	for i, t := range q.ServiceTypes {
		types[i] = url.PathEscape(strings.TrimSpace(t))
	}
	path := dosSearchPath + strings.Join([]string{
		url.PathEscape(role),
		url.PathEscape(postcode),
		strconv.Itoa(q.DistanceMiles),
		url.PathEscape(gp),
		"0", "0", "0",
		strings.Join(types, ","),
		strconv.Itoa(q.ResultsLimit),
	}, "/")
	resp, err := c.get(ctx, path, acc)
	if err != nil {
		return nil, fmt.Errorf("directory: search %s near %q: %w", role, postcode, err)
	}
	out := make([]Service, 0, len(resp.Success.Services))
	for _, s := range resp.Success.Services {
		out = append(out, s.toService(c.zone))
	}
	return out, nil
}

// Service looks id up with the default account and, when that account sees
// nothing, with the fallback account. It returns ErrNotFound when neither
// sees the service.
func (c *DoSClient) Service(ctx context.Context, id string) (*Service, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return nil, errors.New("directory: service id is required")
	}
	roles := []string{c.defaultRole}
	if c.fallbackRole != "" {
		roles = append(roles, c.fallbackRole)
	}
	for _, role := range roles {
		resp, err := c.get(ctx, dosByIDPath+url.PathEscape(id), c.accounts[role])
		if errors.Is(err, errHTTPNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("directory: service %s as %s: %w", id, role, err)
		}
		if len(resp.Success.Services) == 0 {
			continue
		}
		s := resp.Success.Services[0].toService(c.zone)
		return &s, nil
	}
	return nil, fmt.Errorf("directory: service %s: %w", id, ErrNotFound)
}

// errHTTPNotFound marks a 404 answer, which a lookup by id treats as "no
// such service".
var errHTTPNotFound = errors.New("404 not found")

// get performs one rate-limited, authenticated GET and decodes the DoS
// envelope.
func (c *DoSClient) get(ctx context.Context, path string, acc Account) (*dosResponse, error) {
	if err := c.limiter.wait(ctx); err != nil {
		return nil, fmt.Errorf("rate limit wait: %w: %w", ErrUnavailable, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.SetBasicAuth(acc.Username, acc.Password)
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		// *url.Error carries the URL, never the Authorization header.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxDoSResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body (status %d): %w", ErrUnavailable, res.StatusCode, err)
	}
	switch code := res.StatusCode; {
	case code == http.StatusUnauthorized:
		return nil, fmt.Errorf("status %d: %w", code, ErrUnauthorized)
	case code == http.StatusTooManyRequests || code >= 500:
		return nil, fmt.Errorf("status %d: %w", code, ErrUnavailable)
	case code == http.StatusNotFound:
		return nil, fmt.Errorf("status %d: %w: %s", code, errHTTPNotFound, snippet(body))
	case code < 200 || code > 299:
		return nil, fmt.Errorf("status %d: request failed: %s", code, snippet(body))
	}
	if len(body) > MaxDoSResponseBytes {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrUnavailable, MaxDoSResponseBytes)
	}
	var out dosResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("%w: malformed JSON: %w", ErrUnavailable, err)
	}
	return &out, nil
}

// snippet returns the start of an error body for messages.
func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// dosResponse is the DoS envelope: {"success": {"code", "serviceCount",
// "services"}}.
type dosResponse struct {
	Success struct {
		ServiceCount flexInt      `json:"serviceCount"`
		Services     []dosService `json:"services"`
	} `json:"success"`
}

type dosNamed struct {
	Name flexString `json:"name"`
}

type dosService struct {
	ID       flexString `json:"id"`
	Name     flexString `json:"name"`
	Type     *dosNamed  `json:"type"`
	Postcode flexString `json:"postcode"`
	Easting  flexInt    `json:"easting"`
	Northing flexInt    `json:"northing"`
	Region   *dosNamed  `json:"region"`
	Capacity *struct {
		Status *struct {
			Human flexString `json:"human"`
			RAG   flexString `json:"rag"`
		} `json:"status"`
		Updated *struct {
			By   flexString `json:"by"`
			Date flexString `json:"date"`
			Time flexString `json:"time"`
		} `json:"updated"`
	} `json:"capacity"`
}

func (d dosService) toService(zone *time.Location) Service {
	s := Service{
		ID:       string(d.ID),
		Name:     string(d.Name),
		Postcode: string(d.Postcode),
		Easting:  int(d.Easting),
		Northing: int(d.Northing),
	}
	if d.Type != nil {
		s.Type = string(d.Type.Name)
	}
	if d.Region != nil {
		s.Region = string(d.Region.Name)
	}
	if c := d.Capacity; c != nil {
		if c.Status != nil {
			s.Capacity = strings.ToUpper(strings.TrimSpace(string(c.Status.Human)))
			s.RAG = string(c.Status.RAG)
		}
		if c.Updated != nil {
			s.UpdatedBy = string(c.Updated.By)
			s.UpdatedAt = ParseDoSTime(string(c.Updated.Date), string(c.Updated.Time), zone)
		}
	}
	return s
}

// ParseDoSTime reads the directory's "updated" date ("%d/%m/%Y", e.g.
// 12/8/2017 or 12/08/2017) and time ("%H:%M", seconds tolerated) as a
// wall-clock time in zone and returns it in UTC. A missing or garbled date
// or time gives the zero time.
func ParseDoSTime(date, clock string, zone *time.Location) time.Time {
	date, clock = strings.TrimSpace(date), strings.TrimSpace(clock)
	if date == "" || clock == "" || zone == nil {
		return time.Time{}
	}
	for _, layout := range []string{"2/1/2006 15:04", "2/1/2006 15:04:05"} {
		if t, err := time.ParseInLocation(layout, date+" "+clock, zone); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// flexString decodes a JSON string, number or boolean as text and anything
// else (null, objects, arrays) as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	*f = ""
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*f = flexString(b)
	}
	return nil
}

// flexInt decodes a JSON number or numeric string, rounded to an int; null,
// garbage and out-of-range values decode as 0.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	*f = 0
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return nil //nolint:nilerr // tolerate garbage as 0
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(s)), 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) > math.MaxInt32 {
		return nil
	}
	*f = flexInt(math.Round(v))
	return nil
}

// limiter is a token bucket of burst 1: calls are spaced 1/rate apart.
type limiter struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newLimiter(perSecond float64) *limiter {
	return &limiter{interval: time.Duration(float64(time.Second) / perSecond)}
}

// wait blocks until the caller may proceed or ctx is done.
func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		// Give the slot back if nobody queued behind it.
		if l.next.Equal(at.Add(l.interval)) {
			l.next = at
		}
		l.mu.Unlock()
		return ctx.Err()
	}
}
