// Package smsfake is a small stand-in for Twilio's Messages API, for tests:
// POST /2010-04-01/Accounts/{sid}/Messages.json with HTTP Basic auth and a
// form body, answering with Twilio's JSON, and GET of the same resource,
// the message log (filtered by To and From, newest first, paged with
// PageSize and next_page_uri). Numbers can be marked unusable, failures
// queued, and a message can be accepted with the answer lost.
package smsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Message is a message the fake accepted.
type Message struct {
	SID, To, From, Body string
}

// Failure is an answer to give instead of accepting the next message.
type Failure struct {
	Status int
	// Code and Message go in Twilio's error JSON.
	Code    int
	Message string
	// RetryAfter, when set, is sent verbatim as the Retry-After header.
	RetryAfter string
}

// Server is the fake Messages API.
type Server struct {
	*httptest.Server
	AccountSID, AuthToken string

	mu       sync.Mutex
	messages []Message
	// created is when each message was accepted, by index.
	created  []time.Time
	calls    int
	bad      map[string]int
	failures []Failure
	// outage, when set, answers every request until cleared.
	outage *Failure
	// dropAnswers is how many accepted messages get no answer.
	dropAnswers int
}

// New starts a fake for the account and closes it when the test ends.
func New(t testing.TB, accountSID, authToken string) *Server {
	s := &Server{AccountSID: accountSID, AuthToken: authToken, bad: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// RejectNumber makes every message to number fail with Twilio error code
// (21211, 21614, 21610, ...).
func (s *Server) RejectNumber(number string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bad[number] = code
}

// FailNext queues f as the answer to the next request.
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// SetOutage makes every request answer f until SetOutage(nil): a provider
// that is down for a while and then recovers.
func (s *Server) SetOutage(f *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = f
}

// DropNextAnswers makes the next n messages be accepted and logged, with
// the connection then closed before any answer: a provider that took the
// message while its caller died or lost the connection.
func (s *Server) DropNextAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAnswers = n
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Calls is how many requests the fake received.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if (r.Method != http.MethodPost && r.Method != http.MethodGet) || r.URL.Path != "/2010-04-01/Accounts/"+s.AccountSID+"/Messages.json" {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != s.AccountSID || pass != s.AuthToken {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.Method == http.MethodGet && s.outage == nil {
		s.list(w, r)
		return
	}
	if s.outage != nil || len(s.failures) > 0 {
		var f Failure
		if s.outage != nil {
			f = *s.outage
		} else {
			f = s.failures[0]
			s.failures = s.failures[1:]
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		twilioError(w, f.Status, f.Code, f.Message)
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, "unreadable form")
		return
	}
	to := r.PostForm.Get("To")
	if code, ok := s.bad[to]; ok {
		twilioError(w, http.StatusBadRequest, code, "The 'To' number "+to+" cannot receive messages.")
		return
	}
	if to == "" || r.PostForm.Get("From") == "" || r.PostForm.Get("Body") == "" {
		twilioError(w, http.StatusBadRequest, 21604, "A 'To', 'From' and 'Body' are required.")
		return
	}
	m := Message{SID: fmt.Sprintf("SM%032d", len(s.messages)+1), To: to, From: r.PostForm.Get("From"), Body: r.PostForm.Get("Body")}
	s.messages = append(s.messages, m)
	s.created = append(s.created, time.Now().UTC())
	if s.dropAnswers > 0 {
		s.dropAnswers--
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(s.resource(len(s.messages) - 1))
}

// resource is the i-th message as Twilio's JSON shows it.
func (s *Server) resource(i int) map[string]any {
	m := s.messages[i]
	return map[string]any{
		"sid": m.SID, "status": "queued", "to": m.To, "from": m.From, "body": m.Body,
		"account_sid": s.AccountSID, "date_created": s.created[i].Format(time.RFC1123Z),
		"error_code": nil, "error_message": nil,
	}
}

// list answers the message log: messages matching the To and From
// filters, newest first, PageSize (default 50) a page, Page counting from 0.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := strconv.Atoi(q.Get("PageSize"))
	if err != nil || size < 1 || size > 1000 {
		size = 50
	}
	page, _ := strconv.Atoi(q.Get("Page"))
	var match []int
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if (q.Get("To") == "" || m.To == q.Get("To")) && (q.Get("From") == "" || m.From == q.Get("From")) {
			match = append(match, i)
		}
	}
	out := []map[string]any{}
	for i := page * size; i < len(match) && i < (page+1)*size; i++ {
		out = append(out, s.resource(match[i]))
	}
	next := ""
	if (page+1)*size < len(match) {
		nq := url.Values{"To": {q.Get("To")}, "From": {q.Get("From")}, "PageSize": {strconv.Itoa(size)}, "Page": {strconv.Itoa(page + 1)}}
		next = r.URL.Path + "?" + nq.Encode()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"messages": out, "next_page_uri": next, "page": page, "page_size": size,
		"uri": r.URL.RequestURI(),
	})
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
	})
}
