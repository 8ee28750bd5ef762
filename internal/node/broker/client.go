package broker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-health/vigil/internal/redact"
)

// Defaults and limits of the client.
const (
	// DefaultTimeout bounds every request when Options.Timeout is zero (the
	// seed's 10 s).
	DefaultTimeout = 10 * time.Second
	// UserAgent is sent with every request; the client says what it is.
	UserAgent = "vigil-broker-monitor/1"
	// MaxResponseBytes is the most of a response body the client reads.
	MaxResponseBytes = 8 << 20
	// MaxErrorContent is the most characters of an import error's content
	// the client keeps; longer contents are cut.
	MaxErrorContent = 2000
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrUnauthorized means the broker refused the API key (HTTP 401/403).
	ErrUnauthorized = errors.New("broker: unauthorized")
	// ErrNotFound means the broker does not know the node (HTTP 404).
	ErrNotFound = errors.New("broker: not found")
	// ErrMalformed means the broker answered something that is not the
	// expected XML document.
	ErrMalformed = errors.New("broker: malformed response")
)

// StatusError is a non-2xx answer other than 401, 403 and 404.
type StatusError struct {
	Method     string
	Path       string
	StatusCode int
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("broker: %s %s: HTTP %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
}

// IsPermanent reports whether retrying the call that returned err cannot
// help: the key was refused, the answer was not the expected XML, the node
// does not exist, or the broker rejected the request itself (4xx other
// than 408 and 429). Timeouts, connection errors and 5xx are transient.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotFound) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 400 && se.StatusCode < 500 &&
			se.StatusCode != http.StatusRequestTimeout && se.StatusCode != http.StatusTooManyRequests
	}
	return false
}

// Options configures a Client.
type Options struct {
	// BaseURL is the broker's root, e.g. https://broker.example.org/
	// (without /broker). Required.
	BaseURL string
	// APIKey is the broker admin key, sent as a Bearer token. String,
	// GoString, LogValue and MarshalJSON of Options redact it.
	APIKey string
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient is the client to use; nil means a fresh one with Timeout.
	HTTPClient *http.Client
}

// String describes the options with the API key redacted.
func (o Options) String() string {
	return fmt.Sprintf("broker.Options{BaseURL:%q, APIKey:%s, Timeout:%s}", o.BaseURL, redact.Secret(o.APIKey), o.Timeout)
}

// GoString is String, so %#v redacts too.
func (o Options) GoString() string { return o.String() }

// LogValue implements slog.LogValuer without the API key.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", o.BaseURL),
		slog.String("api_key", redact.Secret(o.APIKey)),
		slog.Duration("timeout", o.Timeout),
	)
}

// MarshalJSON writes the options with the API key redacted.
func (o Options) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL string `json:"base_url"`
		APIKey  string `json:"api_key"`
		Timeout string `json:"timeout"`
	}{o.BaseURL, redact.Secret(o.APIKey), o.Timeout.String()})
}

// Client talks to a broker's admin API. It remembers each URL's ETag and
// parsed answer and revalidates with If-None-Match, so an unchanged
// resource costs a 304 and no parsing. It is safe for concurrent use.
type Client struct {
	base    string
	key     string
	timeout time.Duration
	http    *http.Client

	mu    sync.Mutex
	cache map[string]cached
}

// cached is the last 200 answer of one URL.
type cached struct {
	etag  string
	value any
}

// NewClient validates o and returns a client.
func NewClient(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(o.BaseURL))
	if err != nil {
		return nil, fmt.Errorf("broker: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("broker: base URL %q must be an absolute http(s) URL", o.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("broker: base URL %q must not have a query or fragment", o.BaseURL)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("broker: negative timeout %s", o.Timeout)
	}
	timeout := cmp.Or(o.Timeout, DefaultTimeout)
	hc := o.HTTPClient
	if hc == nil {
		// A scan fetches many nodes at once from one host: keep enough
		// idle connections that they are reused (no new TLS handshake per
		// request).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		hc = &http.Client{Timeout: timeout, Transport: t}
	}
	return &Client{
		base:    strings.TrimRight(u.String(), "/"),
		key:     o.APIKey,
		timeout: timeout,
		http:    hc,
		cache:   make(map[string]cached),
	}, nil
}

// Status checks that the broker answers HEAD /broker/status with 2xx.
// The status endpoint needs no key, so none is sent.
func (c *Client) Status(ctx context.Context) error {
	const path = "/broker/status"
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("broker: HEAD %s: %w", path, err)
	}
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("broker: HEAD %s: %w", path, err)
	}
	defer drain(resp.Body)
	return statusErr(http.MethodHead, path, resp.StatusCode)
}

// Nodes returns every node the broker lists (GET /broker/node), sorted by
// id (numerically where ids are numbers). Entries without an id are
// skipped.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	v, err := c.get(ctx, "/broker/node", func(body []byte) (any, error) {
		return parseNodeList(body)
	})
	if err != nil {
		return nil, err
	}
	nodes := v.([]Node)
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		out[i] = n.clone()
	}
	return out, nil
}

// Node returns one node (GET /broker/node/{id}); ErrNotFound when the
// broker does not know it.
func (c *Client) Node(ctx context.Context, id string) (Node, error) {
	v, err := c.get(ctx, "/broker/node/"+url.PathEscape(id), func(body []byte) (any, error) {
		return parseNode(body)
	})
	if err != nil {
		return Node{}, err
	}
	return v.(Node).clone(), nil
}

// Stats returns the node's import statistics (GET
// /broker/node/{id}/stats), or nil and no error when the node has
// published none (404).
func (c *Client) Stats(ctx context.Context, id string) (*ImportStats, error) {
	v, err := c.get(ctx, "/broker/node/"+url.PathEscape(id)+"/stats", func(body []byte) (any, error) {
		return parseStats(body)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return v.(*ImportStats).clone(), nil
}

// Resource returns one of the node's Java-properties resources (GET
// /broker/node/{id}/{name}, name one of Resources) sorted by key. Values
// have their line breaks removed and empty values read "-", as the seed
// stores them. A resource the node has not published (404) is empty, not
// an error.
func (c *Client) Resource(ctx context.Context, id, name string) ([]Property, error) {
	if name == "" || name == "stats" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("broker: invalid resource name %q", name)
	}
	v, err := c.get(ctx, "/broker/node/"+url.PathEscape(id)+"/"+url.PathEscape(name), func(body []byte) (any, error) {
		return parseProperties(body)
	})
	if errors.Is(err, ErrNotFound) {
		return []Property{}, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]Property)), nil
}

// get fetches path with a conditional GET and returns the parsed body,
// reusing the cached value on 304. The returned value is shared with the
// cache: callers copy it.
func (c *Client) get(ctx context.Context, path string, parse func([]byte) (any, error)) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("broker: GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/xml")
	req.Header.Set("User-Agent", UserAgent)
	c.mu.Lock()
	prev, havePrev := c.cache[path]
	c.mu.Unlock()
	if havePrev {
		req.Header.Set("If-None-Match", prev.etag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("broker: GET %s: %w", path, err)
	}
	defer drain(resp.Body)
	if resp.StatusCode == http.StatusNotModified {
		if !havePrev {
			return nil, fmt.Errorf("broker: GET %s: 304 without a conditional request: %w", path, ErrMalformed)
		}
		return prev.value, nil
	}
	if err := statusErr(http.MethodGet, path, resp.StatusCode); err != nil {
		if resp.StatusCode == http.StatusNotFound {
			c.forget(path)
		}
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("broker: GET %s: read body: %w", path, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("broker: GET %s: body larger than %d bytes: %w", path, MaxResponseBytes, ErrMalformed)
	}
	v, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("broker: GET %s: %w", path, err)
	}
	if etag := resp.Header.Get("ETag"); etag != "" {
		c.mu.Lock()
		c.cache[path] = cached{etag: etag, value: v}
		c.mu.Unlock()
	} else if havePrev {
		c.forget(path)
	}
	return v, nil
}

func (c *Client) forget(path string) {
	c.mu.Lock()
	delete(c.cache, path)
	c.mu.Unlock()
}

// statusErr maps an HTTP status to nil (2xx) or an error.
func statusErr(method, path string, code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("broker: %s %s: HTTP %d: %w", method, path, code, ErrUnauthorized)
	case code == http.StatusNotFound:
		return fmt.Errorf("broker: %s %s: %w", method, path, ErrNotFound)
	}
	return &StatusError{Method: method, Path: path, StatusCode: code}
}

// drain reads a little of what is left so the connection can be reused,
// then closes the body.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	_ = body.Close()
}

func (n Node) clone() Node {
	if n.LastContact != nil {
		t := *n.LastContact
		n.LastContact = &t
	}
	return n
}

func (s *ImportStats) clone() *ImportStats {
	out := *s
	out.Start = cloneTime(s.Start)
	out.LastWrite = cloneTime(s.LastWrite)
	out.LastReject = cloneTime(s.LastReject)
	out.Errors = slices.Clone(s.Errors)
	return &out
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
