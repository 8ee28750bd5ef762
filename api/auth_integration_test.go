//go:build integration

package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
)

func jsonUnmarshal(raw []byte, out any) error { return json.Unmarshal(raw, out) }

func TestAuth_LoginRefreshAndMe(t *testing.T) {
	s := startStack(t)

	var tok api.TokenResponse
	resp := s.call(t, "POST", "/v1/auth/login", "", `{"login":"c01","password":"`+demoPassword+`"}`, &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "Bearer", tok.TokenType)
	require.Equal(t, 900, tok.ExpiresIn)
	require.Equal(t, "C01", tok.Staff.ID)
	require.Equal(t, "charge", tok.Staff.Access)

	var me api.StaffInfo
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/me", tok.AccessToken, "", &me).StatusCode)
	require.Equal(t, "C01", me.ID)

	var refreshed api.TokenResponse
	resp = s.call(t, "POST", "/v1/auth/refresh", "", `{"refresh_token":"`+tok.RefreshToken+`"}`, &refreshed)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, refreshed.AccessToken)

	// A refresh token is not an access token, and vice versa.
	require.Equal(t, http.StatusUnauthorized, s.call(t, "GET", "/v1/me", tok.RefreshToken, "", nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/auth/refresh", "", `{"refresh_token":"`+tok.AccessToken+`"}`, nil).StatusCode)
}

func TestAuth_Refusals(t *testing.T) {
	s := startStack(t)
	expired, _, err := s.Signer.Issue(auth.Claims{Subject: "N01", SubjectType: auth.SubjectStaff, Access: "staff", TokenType: auth.TokenAccess}, time.Second)
	require.NoError(t, err)
	time.Sleep(6500 * time.Millisecond) // past the 5 s leeway
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   string
		status int
		code   string
		field  string
	}{
		{"wrong password", "POST", "/v1/auth/login", "", `{"login":"n01","password":"wrong-password"}`, 401, api.CodeUnauthorized, ""},
		{"unknown login gets the same answer", "POST", "/v1/auth/login", "", `{"login":"nobody","password":"wrong-password"}`, 401, api.CodeUnauthorized, ""},
		{"missing password", "POST", "/v1/auth/login", "", `{"login":"n01"}`, 400, api.CodeInvalidField, "password"},
		{"missing login", "POST", "/v1/auth/login", "", `{"password":"x"}`, 400, api.CodeInvalidField, "login"},
		{"no token", "GET", "/v1/me", "", "", 401, api.CodeUnauthorized, ""},
		{"garbage token", "GET", "/v1/me", "not-a-jwt", "", 401, api.CodeUnauthorized, ""},
		{"expired token", "GET", "/v1/me", expired, "", 401, api.CodeUnauthorized, ""},
		{"refresh with garbage", "POST", "/v1/auth/refresh", "", `{"refresh_token":"x.y.z"}`, 401, api.CodeUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body api.ErrorBody
			resp := s.call(t, tt.method, tt.path, tt.token, tt.body, &body)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, tt.code, body.Error.Code)
			require.Equal(t, tt.field, body.Error.Field)
			if tt.status == 401 && tt.path != "/v1/auth/login" {
				require.Equal(t, `Bearer realm="vigil"`, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
