// Package slackfake is a small in-memory stand-in for Slack's Web API, for
// tests: chat.postMessage, chat.update and conversations.history, speaking
// the same form-encoded requests and JSON answers as Slack, with failures
// that can be queued per method. Point slack-go at it with
// slack.OptionAPIURL(srv.APIURL()) (slacknotify.Config{APIURL: srv.APIURL()}).
package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Message is a message the fake holds.
type Message struct {
	Channel     string
	TS          string
	Text        string
	Attachments json.RawMessage
	Metadata    json.RawMessage
	// Updates counts chat.update calls on the message.
	Updates int
}

// Failure is an answer to give instead of the normal one.
type Failure struct {
	// Status is the HTTP status (0 means 200 with {"ok": false}).
	Status int
	// Error is Slack's error code for a 200 answer ("channel_not_found").
	Error string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int
	// Apply makes the call take effect before the failure is answered: a
	// post that lands in the channel while its caller never learns the ts.
	Apply bool
}

// Server is the fake Slack Web API.
type Server struct {
	*httptest.Server
	// Token, when set, is the bot token every call must carry.
	Token string

	mu       sync.Mutex
	messages []*Message
	calls    map[string]int
	failures map[string][]Failure
	// outage, when set, answers every call until cleared (SetOutage(nil)).
	outage *Failure
	// onCall, when set, runs (outside the lock) before each call is answered.
	onCall func(method string)
}

// New starts a fake and closes it when the test ends.
func New(t testing.TB) *Server {
	s := &Server{calls: map[string]int{}, failures: map[string][]Failure{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is the base URL to give slack-go (it ends with a slash).
func (s *Server) APIURL() string { return s.URL + "/" }

// FailNext queues f as the answer to the next call of method
// ("chat.postMessage").
func (s *Server) FailNext(method string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], f)
}

// SetOutage makes every call, of any method, answer f until SetOutage(nil):
// a provider that is down for a while and then recovers.
func (s *Server) SetOutage(f *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = f
}

// OnCall runs fn before each call is answered (fn gets the method name).
func (s *Server) OnCall(fn func(method string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = fn
}

// Calls is how many times method was called, failed calls included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns copies of the messages in channel, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channel {
			out = append(out, *m)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls[method]++
	hook := s.onCall
	s.mu.Unlock()
	if hook != nil {
		hook(method)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	token := r.PostForm.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if s.Token != "" && token != s.Token {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	q := s.failures[method]
	if s.outage != nil {
		q = []Failure{*s.outage}
	}
	if len(q) > 0 {
		f := q[0]
		if s.outage == nil {
			s.failures[method] = q[1:]
		}
		if f.Apply {
			s.apply(httptest.NewRecorder(), r, method)
		}
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		if f.Status != 0 && f.Status != http.StatusOK {
			http.Error(w, http.StatusText(f.Status), f.Status)
			return
		}
		writeJSON(w, map[string]any{"ok": false, "error": f.Error})
		return
	}
	s.apply(w, r, method)
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, method string) {
	switch method {
	case "chat.postMessage":
		s.post(w, r)
	case "chat.update":
		s.update(w, r)
	case "conversations.history":
		s.history(w, r)
	default:
		writeJSON(w, map[string]any{"ok": false, "error": "unknown_method"})
	}
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	ch := r.PostForm.Get("channel")
	if ch == "" {
		writeJSON(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	m := &Message{
		Channel:     ch,
		TS:          fmt.Sprintf("%d.%06d", 1700000000+len(s.messages), len(s.messages)+1),
		Text:        r.PostForm.Get("text"),
		Attachments: raw(r.PostForm.Get("attachments")),
		Metadata:    raw(r.PostForm.Get("metadata")),
	}
	s.messages = append(s.messages, m)
	writeJSON(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS, "message": map[string]any{"type": "message", "ts": m.TS, "text": m.Text}})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.PostForm.Get("channel"), r.PostForm.Get("ts")
	for _, m := range s.messages {
		if m.Channel == ch && m.TS == ts {
			m.Text = r.PostForm.Get("text")
			if a := r.PostForm.Get("attachments"); a != "" {
				m.Attachments = raw(a)
			}
			if md := r.PostForm.Get("metadata"); md != "" {
				m.Metadata = raw(md)
			}
			m.Updates++
			writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": m.Text})
			return
		}
	}
	writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	ch := r.PostForm.Get("channel")
	limit, _ := strconv.Atoi(r.PostForm.Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	withMeta := r.PostForm.Get("include_all_metadata") == "1"
	msgs := []map[string]any{}
	for i := len(s.messages) - 1; i >= 0 && len(msgs) < limit; i-- {
		m := s.messages[i]
		if m.Channel != ch {
			continue
		}
		out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
		if len(m.Attachments) > 0 {
			out["attachments"] = m.Attachments
		}
		if withMeta && len(m.Metadata) > 0 {
			out["metadata"] = m.Metadata
		}
		msgs = append(msgs, out)
	}
	writeJSON(w, map[string]any{"ok": true, "messages": msgs, "has_more": false})
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
