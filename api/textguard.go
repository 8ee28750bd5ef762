package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/cleantext"
)

// Text at the edge. Every text a request carries is checked before a
// handler sees it: JSON bodies by decodeJSON and readJSONBody
// (checkJSONText), query and path parameters by textGuard, forms by the
// handlers through validFormText, Slack's signed payload after its
// signature. Postgres refuses NUL in text, encoding/json silently replaces
// invalid UTF-8, and control characters have no place in a parameter, so
// such text is a 400 naming the field, never a 500 from deep inside.

// validParamText reports whether a query or path parameter is valid UTF-8
// free of control characters (C0, DEL and C1; tab and newlines included).
func validParamText(s string) bool { return cleantext.Valid(s, "") }

// validFormText reports whether a form field (such as /ui/login's login
// and password) is valid UTF-8 free of NUL and of control characters other
// than tab, CR and LF.
func validFormText(s string) bool { return validText(s, true) }

// paramTextMessage explains a refused parameter.
const paramTextMessage = "must be valid UTF-8 text without control characters"

// textGuard refuses, with a 400 naming the parameter, a request whose path
// parameters or query parameters (names or values) are not valid UTF-8 or
// hold control characters. It runs before every handler.
func textGuard() gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range c.Params {
			if !validParamText(p.Value) {
				abortWithError(c, http.StatusBadRequest, CodeInvalidField, paramTextMessage, p.Key)
				return
			}
		}
		if c.Request.URL.RawQuery != "" {
			for name, values := range c.Request.URL.Query() {
				if !validParamText(name) {
					abortWithError(c, http.StatusBadRequest, CodeInvalidField, "the parameter name "+paramTextMessage,
						strconv.QuoteToASCII(name))
					return
				}
				for _, v := range values {
					if !validParamText(v) {
						abortWithError(c, http.StatusBadRequest, CodeInvalidField, paramTextMessage, name)
						return
					}
				}
			}
		}
		c.Next()
	}
}
