package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/activation/credential"
	"github.com/vigil-health/vigil/workflows"
)

// The activation decoders are pure: they answer bad input with a 4xx that
// names the field (or says the JSON is malformed) and never panic. The fuzz
// tests drive them through Gin exactly as the handlers do, without stores.

// decoderEngine serves decode at POST|GET /x/:code; a body that passes
// answers 204.
func decoderEngine(decode func(*gin.Context) bool) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(requestIDMiddleware())
	h := func(c *gin.Context) {
		if decode(c) {
			c.Status(http.StatusNoContent)
		}
	}
	r.POST("/x/:code", h)
	r.GET("/x/:code", h)
	return r
}

// requireNamedRefusal checks one answer: 204, or a 4xx whose error names
// the field unless the body as a whole is unreadable.
func requireNamedRefusal(t *testing.T, w *httptest.ResponseRecorder) ErrorDetail {
	t.Helper()
	if w.Code == http.StatusNoContent {
		return ErrorDetail{}
	}
	if w.Code < 400 || w.Code > 499 {
		t.Fatalf("status %d for bad input: %s", w.Code, w.Body.String())
	}
	var body ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, w.Body.String())
	}
	switch body.Error.Code {
	case CodeInvalidJSON, CodeBodyTooLarge, CodeUnsupportedMedia:
	default:
		if body.Error.Field == "" {
			t.Fatalf("%d %s without a field: %s", w.Code, body.Error.Code, w.Body.String())
		}
	}
	return body.Error
}

func serve(h http.Handler, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(context.Background(), method, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func FuzzActivationAttempt(f *testing.F) {
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "", `{"pin":"abcd"}`)
	f.Add("123456789", "device", `{}`)
	f.Add("123456789", "device", ``)
	f.Add("abc", "patient", `{"pin":"ABCD"}`)
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "gdm", `{"pin":1}`)
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "", `{"pin":"AB0D","x":1}`)
	f.Add("123456789", "device", `{"pin":"ABCD"}`)
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123", "", `[`)
	var got struct{ kind, code, pin string }
	h := decoderEngine(func(c *gin.Context) bool {
		var ok bool
		got.kind, got.code, got.pin, ok = decodeActivationAttempt(c, 4)
		return ok
	})
	f.Fuzz(func(t *testing.T, code, typ, body string) {
		target := "/x/" + url.PathEscape(code) + "?type=" + url.QueryEscape(typ)
		if code == "" || strings.ContainsAny(code, "/") {
			return // not this route
		}
		w := serve(h, "POST", target, body)
		requireNamedRefusal(t, w)
		if w.Code != http.StatusNoContent {
			return
		}
		switch got.kind {
		case workflows.ActivationKindPatient:
			if !credential.Valid(got.code, credential.CodeAlphabet, credential.ActivationCodeLength) ||
				!credential.Valid(got.pin, credential.PINAlphabet, 4) {
				t.Fatalf("accepted patient code %q pin %q", got.code, got.pin)
			}
		case workflows.ActivationKindDevice:
			if !credential.Valid(got.code, credential.Digits, credential.DeviceCodeLength) || got.pin != "" {
				t.Fatalf("accepted device code %q pin %q", got.code, got.pin)
			}
		default:
			t.Fatalf("accepted kind %q", got.kind)
		}
	})
}

func FuzzAuthorisationCodeHeader(f *testing.F) {
	f.Add("")
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")
	f.Add("abcdefghijklmnopqrstuvwxyz012345")
	f.Add("ABCDEFGHIJKLMNOPQRSTUVWXYZ01234\x00")
	h := decoderEngine(func(c *gin.Context) bool {
		code, fe := authorisationCodeHeader(c)
		if fe != nil {
			abortInvalid(c, fe)
			return false
		}
		if !credential.Valid(code, credential.CodeAlphabet, credential.AuthorisationCodeLength) {
			panic("accepted a malformed authorisation code")
		}
		return true
	})
	f.Fuzz(func(t *testing.T, header string) {
		if strings.ContainsAny(header, "\r\n") {
			return // not a header value
		}
		w := serve(h, "GET", "/x/1", "", AuthorisationCodeHeader, header)
		if e := requireNamedRefusal(t, w); w.Code != http.StatusNoContent && e.Field != AuthorisationCodeHeader {
			t.Fatalf("refusal names %q", e.Field)
		}
	})
}

func FuzzDeviceRequest(f *testing.F) {
	f.Add(`{"location_id":"ward-7","description":"Bay 3 tablet"}`, true)
	f.Add(`{"location_id":"","description":"x"}`, true)
	f.Add(`{"active":false}`, false)
	f.Add(`{}`, false)
	f.Add(`{"location_id":"a b"}`, false)
	f.Add(`{"description":"\u0000"}`, false)
	f.Add(`{"active":"no"}`, false)
	f.Fuzz(func(t *testing.T, body string, create bool) {
		var got deviceRequest
		h := decoderEngine(func(c *gin.Context) bool {
			var ok bool
			got, ok = decodeDevice(c, create)
			return ok
		})
		w := serve(h, "POST", "/x/1", body)
		requireNamedRefusal(t, w)
		if w.Code == http.StatusNoContent && got.LocationID != nil && !locationIDPattern.MatchString(*got.LocationID) {
			t.Fatalf("accepted location %q", *got.LocationID)
		}
	})
}

func FuzzClinicianRequest(f *testing.F) {
	f.Add(`{"clinician_id":"c1","login_active":true,"groups":["SEND Clinician"],"location_ids":["ward-7"],"contract_expiry_eod_date":"2027-03-31"}`, true)
	f.Add(`{"clinician_id":"c 1","login_active":true}`, true)
	f.Add(`{"login_active":true}`, true)
	f.Add(`{"contract_expiry_eod_date":"31/03/2027"}`, false)
	f.Add(`{"groups":[""]}`, false)
	f.Add(`{"groups":null}`, false)
	f.Add(`{"clinician_id":"c2"}`, false)
	f.Add(`{"send_entry_identifier":""}`, false)
	f.Fuzz(func(t *testing.T, body string, create bool) {
		h := decoderEngine(func(c *gin.Context) bool {
			_, _, ok := decodeClinician(c, create)
			return ok
		})
		requireNamedRefusal(t, serve(h, "POST", "/x/1", body))
	})
}

func FuzzSystemTokenRequest(f *testing.F) {
	f.Add(`{"system_id":"dhos-robot"}`)
	f.Add(`{"system_id":"dhos-robot","ttl_seconds":3601}`)
	f.Add(`{"system_id":"","ttl_seconds":60}`)
	f.Add(`{"system_id":"x","ttl_seconds":1e99}`)
	f.Fuzz(func(t *testing.T, body string) {
		h := decoderEngine(func(c *gin.Context) bool {
			_, ttl, ok := decodeSystemToken(c)
			if ok && (ttl < 60e9 || ttl > maxSystemTokenTTL) {
				panic("accepted ttl out of bounds")
			}
			return ok
		})
		requireNamedRefusal(t, serve(h, "POST", "/x/1", body))
	})
}

// TestActivationDecoders pins the answers the fuzz tests only bound.
func TestActivationDecoders(t *testing.T) {
	attempt := decoderEngine(func(c *gin.Context) bool { _, _, _, ok := decodeActivationAttempt(c, 4); return ok })
	code := "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
	tests := []struct {
		name, target, body string
		status             int
		field              string
	}{
		{"patient ok, case-insensitive", "/x/" + strings.ToLower(code), `{"pin":"abcd"}`, 204, ""},
		{"missing pin", "/x/" + code, `{}`, 400, "pin"},
		{"empty body names the pin", "/x/" + code, ``, 400, "pin"},
		{"pin with a confusable character", "/x/" + code, `{"pin":"AB0D"}`, 400, "pin"},
		{"short code", "/x/ABC", `{"pin":"ABCD"}`, 400, "code"},
		{"unknown type", "/x/" + code + "?type=gdm", `{"pin":"ABCD"}`, 400, "type"},
		{"device ok without body", "/x/123456789?type=device", ``, 204, ""},
		{"device with a pin", "/x/123456789?type=device", `{"pin":"ABCD"}`, 400, "pin"},
		{"device code not digits", "/x/12345678A?type=device", ``, 400, "code"},
		{"unknown field", "/x/" + code, `{"pin":"ABCD","otp":"x"}`, 400, "otp"},
		{"empty field name is malformed JSON", "/x/" + code, `{"pin":"ABCD","":""}`, 400, ""},
		{"quoted field name", "/x/" + code, `{"pin":"ABCD","o\"tp":1}`, 400, `o"tp`},
		{"pin not a string", "/x/" + code, `{"pin":1234}`, 400, "pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(attempt, "POST", tt.target, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body.String())
			}
			if e := requireNamedRefusal(t, w); e.Field != tt.field {
				t.Fatalf("field %q, want %q", e.Field, tt.field)
			}
		})
	}
}
