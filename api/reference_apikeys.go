package api

import (
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
	var in reference.APIKeyInput
	if !decodeJSON(c, &in, false) {
		return
	}
	k, secret, err := s.referenceStore().CreateAPIKey(c.Request.Context(), in)
	if err != nil {
		s.abortReference(c, "create api key", err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, CreatedAPIKey{APIKey: k, Key: secret.Reveal()})
}

// listAPIKeys returns a page of API keys, without their secrets.
func (s *Server) listAPIKeys(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	list, err := s.referenceStore().ListAPIKeys(c.Request.Context(), page)
	if err != nil {
		s.abortReference(c, "list api keys", err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// revokeAPIKey revokes an API key; revoking twice keeps the first time.
func (s *Server) revokeAPIKey(c *gin.Context) {
	id, ok := s.referenceNumericID(c)
	if !ok {
		return
	}
	if err := s.referenceStore().RevokeAPIKey(c.Request.Context(), id); err != nil {
		s.abortReference(c, "revoke api key", err)
		return
	}
	c.Status(http.StatusNoContent)
}
