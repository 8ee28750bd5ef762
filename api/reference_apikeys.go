package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// CreatedAPIKey answers an API key creation: the stored record and, this
// once only, the key itself.
type CreatedAPIKey struct {
	reference.APIKey
	// Key is the plaintext key. It is not stored and never shown again.
	Key string `json:"key"`
}

// createAPIKey creates an API key for an alert source and returns its
// plaintext once.
func (s *Server) createAPIKey(c *gin.Context) {
	created, ok := writeReference(s, c, "create api key", func(ctx context.Context, in reference.APIKeyInput) (CreatedAPIKey, error) {
		k, secret, err := s.referenceStore().CreateAPIKey(ctx, in)
		return CreatedAPIKey{APIKey: k, Key: secret.Reveal()}, err
	})
	if !ok {
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, created)
}

// listAPIKeys returns a page of API keys, without their secrets.
func (s *Server) listAPIKeys(c *gin.Context) {
	listReference(s, c, "list api keys", s.referenceStore().ListAPIKeys)
}

// revokeAPIKey revokes an API key; revoking twice keeps the first time.
func (s *Server) revokeAPIKey(c *gin.Context) {
	if id, ok := s.referenceNumericID(c); ok {
		deleteReference(s, c, "revoke api key", id, s.referenceStore().RevokeAPIKey)
	}
}
