package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// demoWatches are the capacity watches the demo seeds, on services of the
// directory simulator's catalogue (all with grid references, so the
// Capacity page's map has markers): three single services at different
// statuses and a search of Manchester's emergency departments. Their
// descriptions identify them on a restart.
var demoWatches = []map[string]any{
	{"kind": "service", "service_id": "2000001", "description": "Demo: Leeds General Infirmary ED"},
	{"kind": "service", "service_id": "2000007", "description": "Demo: Dewsbury UTC"},
	{"kind": "service", "service_id": "4000002", "description": "Demo: University College Hospital ED"},
	{"kind": "search", "description": "Demo: emergency departments within 5 miles of Manchester",
		"search": map[string]any{"postcode": "M1 1AE", "distance_miles": 5, "service_types": []string{"40"}, "results_limit": 5}},
}

// SeedWatches creates the demo's capacity watches through the API at
// baseURL, signed in as login with password (a charge nurse or admin), as a
// person would. A demo watch whose description an existing watch has is
// not created again, so restarts do not add duplicates (one deleted is
// created again). It returns how many it created.
func SeedWatches(ctx context.Context, baseURL, login, password string) (int, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	var session struct {
		AccessToken string `json:"access_token"`
	}
	if err := callJSON(ctx, hc, http.MethodPost, baseURL+"/v1/auth/login", "",
		map[string]string{"login": login, "password": password}, http.StatusOK, &session); err != nil {
		return 0, fmt.Errorf("demo watches: sign in as %s: %w", login, err)
	}
	var list struct {
		Items []struct {
			Description string `json:"description"`
		} `json:"items"`
	}
	if err := callJSON(ctx, hc, http.MethodGet, baseURL+"/v1/watches?limit=200", session.AccessToken, nil, http.StatusOK, &list); err != nil {
		return 0, fmt.Errorf("demo watches: list: %w", err)
	}
	existing := map[string]bool{}
	for _, w := range list.Items {
		existing[w.Description] = true
	}
	created := 0
	for _, w := range demoWatches {
		if existing[w["description"].(string)] {
			continue
		}
		if err := callJSON(ctx, hc, http.MethodPost, baseURL+"/v1/watches", session.AccessToken, w, http.StatusCreated, nil); err != nil {
			return created, fmt.Errorf("demo watch %q: %w", w["description"], err)
		}
		created++
	}
	return created, nil
}

// callJSON sends body (nil for none) with the bearer token (when not
// empty), expects status and decodes the answer into out (when not nil).
func callJSON(ctx context.Context, hc *http.Client, method, url, token string, body any, status int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != status {
		return fmt.Errorf("%s %s: %s: %.300s", method, req.URL.Path, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, req.URL.Path, err)
		}
	}
	return nil
}
