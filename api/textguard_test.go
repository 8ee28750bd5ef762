package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

func TestJSONTextFault(t *testing.T) {
	tests := []struct {
		name, body string
		path       string // "" with ok: no fault
		bad        bool
	}{
		{"plain", `{"login":"a01","password":"x"}`, "", false},
		{"escapes and unicode", `{"a":"\"\\\/\b\f\n\r\t \u00e9 \ud83d\ude00 é 😀","b":[1,true,null,-2.5e3,{}]}`, "", false},
		{"empty key and values", `{"":"","x":[],"y":{}}`, "", false},
		{"escaped NUL", `{"login":"a01\u0000"}`, "login", true},
		{"raw invalid UTF-8", "{\"login\":\"a01\xff\"}", "login", true},
		{"truncated multibyte", "{\"note\":\"\xc3\"}", "note", true},
		{"overlong encoding", "{\"note\":\"\xc0\xaf\"}", "note", true},
		{"UTF-8-encoded surrogate", "{\"note\":\"\xed\xa0\x80\"}", "note", true},
		{"lone high surrogate", `{"note":"\ud800"}`, "note", true},
		{"lone low surrogate", `{"note":"\udc00x"}`, "note", true},
		{"high surrogate then text", `{"note":"\ud800\u0041"}`, "note", true},
		{"nested", `{"alerts":[{},{},{"labels":{"room":"a\u0000"}}]}`, "alerts[2].labels.room", true},
		{"array at root", `["ok","\u0000"]`, "[1]", true},
		{"string at root", `"\u0000"`, "", true},
		{"key with NUL", `{"labels":{"ro\u0000om":"x"}}`, `labels."ro\x00om"`, true},
		{"key with invalid UTF-8", "{\"a\xffb\":1}", `"a\ufffdb"`, true},
		{"first fault wins", `{"a":"\u0000","b":"\u0000"}`, "a", true},
		// Malformed JSON is left to the decoder.
		{"unterminated", `{"a":"\u0000`, "", false},
		{"bad escape", `{"a":"\x"}`, "", false},
		{"raw control character", "{\"a\":\"x\ny\"}", "", false},
		{"missing colon", `{"a" "x"}`, "", false},
		{"empty", ``, "", false},
		{"deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, bad := jsonTextFault([]byte(tt.body))
			require.Equal(t, tt.bad, bad)
			require.Equal(t, tt.path, path)
			if !bad && json.Valid([]byte(tt.body)) {
				var v any
				require.NoError(t, json.Unmarshal([]byte(tt.body), &v))
			}
		})
	}
}

func TestCheckJSONText(t *testing.T) {
	require.Nil(t, checkJSONText([]byte(`{"a":"b"}`)))
	re := checkJSONText([]byte(`{"alerts":[{"labels":{"room":"\u0000"}}]}`))
	require.NotNil(t, re)
	require.Equal(t, http.StatusBadRequest, re.Status)
	require.Equal(t, CodeInvalidField, re.Code)
	require.Equal(t, "alerts[0].labels.room", re.Field)
	re = checkJSONText([]byte(`"\u0000"`))
	require.NotNil(t, re)
	require.Equal(t, CodeInvalidJSON, re.Code)
}

func TestDecodeStrictRefusesBadText(t *testing.T) {
	var dst struct {
		Login string `json:"login"`
	}
	re := decodeStrict(strings.NewReader("{\"login\":\"a\xff\"}"), &dst, false)
	require.NotNil(t, re)
	require.Equal(t, "login", re.Field)
	require.Empty(t, dst.Login, "nothing is decoded")
	require.Nil(t, decodeStrict(strings.NewReader(`{"login":"a01"}`), &dst, false))
	require.Equal(t, "a01", dst.Login)
	require.Nil(t, decodeStrict(strings.NewReader(" "), &dst, true), "empty still allowed")
}

func TestTextValidators(t *testing.T) {
	tests := []struct {
		in          string
		param, form bool
	}{
		{"", true, true},
		{"ward 7 – Überwachung", true, true},
		{"a\x00b", false, false},
		{"a\xffb", false, false},
		{"a\tb", false, true},
		{"a\r\nb", false, true},
		{"a\x1bb", false, false},
		{"a\x7fb", false, false},
		{"a\u0085b", false, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.param, validParamText(tt.in), "param %q", tt.in)
		require.Equal(t, tt.form, validFormText(tt.in), "form %q", tt.in)
	}
}

func TestTextGuard(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(textGuard())
	r.GET("/things/:id", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	tests := []struct {
		path   string
		status int
		field  string
	}{
		{"/things/abc?q=ward+7&x=%C3%A9", http.StatusNoContent, ""},
		{"/things/a%00b", http.StatusBadRequest, "id"},
		{"/things/a%FFb", http.StatusBadRequest, "id"},
		{"/things/a%0Ab", http.StatusBadRequest, "id"},
		{"/things/abc?q=%00", http.StatusBadRequest, "q"},
		{"/things/abc?q=ok&q=%FF", http.StatusBadRequest, "q"},
		{"/things/abc?q=a%09b", http.StatusBadRequest, "q"},
		{"/things/abc?q%00=1", http.StatusBadRequest, `"q\x00"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			require.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.field != "" {
				var body ErrorBody
				require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
				require.Equal(t, tt.field, body.Error.Field)
				require.Equal(t, CodeInvalidField, body.Error.Code)
			}
		})
	}
}

func TestParseInt64(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi int64
		want   int64
		ok     bool
	}{
		{"0", 0, pgBigintMax, 0, true},
		{"9223372036854775807", 0, pgBigintMax, pgBigintMax, true},
		{"9223372036854775808", 0, pgBigintMax, 0, false},
		{"4611686018427387904", 0, pgIntegerMax, 0, false},
		{"2147483647", 0, pgIntegerMax, pgIntegerMax, true},
		{"-32769", pgSmallintMin, pgSmallintMax, 0, false},
		{"-1", 0, pgBigintMax, 0, false},
		{"", 0, 10, 0, false},
		{"1e3", 0, 10000, 0, false},
		{" 1", 0, 10, 0, false},
	}
	for _, tt := range tests {
		n, fe := parseInt64("before", tt.in, tt.lo, tt.hi)
		if !tt.ok {
			require.NotNil(t, fe, tt.in)
			require.Equal(t, "before", fe.Field)
			continue
		}
		require.Nil(t, fe, tt.in)
		require.Equal(t, tt.want, n)
	}
}
