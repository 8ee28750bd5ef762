package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// client calls the API under test.
type client struct {
	base, key string
	http      *http.Client
}

// newClient is a client of the API at base with a 30 s timeout, keeping up
// to idleConns idle connections (0: the default transport's).
func newClient(base, key string, idleConns int) *client {
	hc := &http.Client{Timeout: 30 * time.Second}
	if idleConns > 0 {
		hc.Transport = &http.Transport{MaxIdleConnsPerHost: idleConns}
	}
	return &client{base: base, key: key, http: hc}
}

// send makes one request, with body as JSON when it is not nil and token as
// the bearer token when it is set, and returns the response (its body
// closed) and the body read.
func (c *client) send(ctx context.Context, method, path string, body any, token string) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, raw, nil
}

// post POSTs body and returns the answer's body; a status of 300 or more is
// an error.
func (c *client) post(ctx context.Context, path string, body any, token string) ([]byte, error) {
	resp, raw, err := c.send(ctx, http.MethodPost, path, body, token)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s", path, resp.Status, bytes.TrimSpace(raw))
	}
	return raw, nil
}

// get GETs path and returns the answer's body; a status other than 200 is
// an error.
func (c *client) get(ctx context.Context, path, token string) ([]byte, error) {
	resp, raw, err := c.send(ctx, http.MethodGet, path, nil, token)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, raw)
	}
	return raw, nil
}

// login logs a staff member in and returns their access token.
func (c *client) login(ctx context.Context, login, password string) (string, error) {
	raw, err := c.post(ctx, "/v1/auth/login", map[string]string{"login": login, "password": password}, "")
	if err != nil {
		return "", fmt.Errorf("log in as %s: %w", login, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		return "", fmt.Errorf("decode login: %w", err)
	}
	return tok.AccessToken, nil
}
