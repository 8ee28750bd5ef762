// Package mailsink is a real SMTP server (github.com/emersion/go-smtp) that
// keeps every message it receives in memory. Tests send to it to check what
// was mailed, to whom and how; `vigil dev` runs it as a local mail catcher.
//
// With TLS "starttls" or "tls" it uses a freshly generated self-signed
// certificate for 127.0.0.1, ::1 and localhost; CertPool returns a pool that
// trusts it. With a Username it requires AUTH PLAIN before MAIL FROM. It can
// refuse chosen recipients with a 4xx or 5xx reply (RefuseRecipients,
// SetRefusal).
package mailsink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Sink.
type Options struct {
	// Addr is the listen address; empty means "127.0.0.1:0" (a free port).
	Addr string
	// TLS is "starttls" (offer STARTTLS, the default when empty), "tls"
	// (implicit TLS from the first byte) or "none".
	TLS string
	// Username and Password, when Username is set, make AUTH PLAIN
	// mandatory before MAIL FROM.
	Username, Password string
	// Logger logs each received message's subject and recipients at Info;
	// nil discards.
	Logger *slog.Logger
	// RefuseRecipients refuses RCPT TO for these addresses (compared
	// case-insensitively) with the given reply code, 400-599: 4xx is a
	// temporary refusal, 5xx a permanent one. SetRefusal changes it later.
	RefuseRecipients map[string]int
}

// Received is one message as the sink got it.
type Received struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// Rcpt are the envelope recipients (RCPT TO), in order.
	Rcpt []string
	// Subject is the decoded Subject header.
	Subject string
	// To and CC are the bare addresses of the To and Cc headers.
	To, CC []string
	// MessageID is the Message-ID header including its angle brackets.
	MessageID string
	// Text and HTML are the decoded text/plain and text/html parts.
	Text, HTML string
	// Raw is the message exactly as received after DATA.
	Raw []byte
	// TLS tells whether the session was encrypted when DATA was sent.
	TLS bool
	// Auth is the user name the session authenticated as ("" without AUTH).
	Auth string
	// ParseErr is set when the message could not be parsed as MIME; the
	// other fields are then filled as far as possible.
	ParseErr error
}

// Sink is a running SMTP server. It is safe for concurrent use.
type Sink struct {
	opts     Options
	log      *slog.Logger
	server   *smtp.Server
	listener net.Listener
	pool     *x509.CertPool
	served   chan struct{}

	mu      sync.Mutex
	msgs    []Received
	changed chan struct{}  // closed and replaced on every new message
	refuse  map[string]int // lower-case address → reply code
	refused []Refusal
}

// Refusal is one RCPT TO the sink refused.
type Refusal struct {
	Address string
	Code    int
}

// Start listens on o.Addr and serves until Close.
func Start(o Options) (*Sink, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.TLS == "" {
		o.TLS = "starttls"
	}
	switch o.TLS {
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("mailsink: tls mode %q is not one of starttls, tls, none", o.TLS)
	}
	refuse := make(map[string]int, len(o.RefuseRecipients))
	for addr, code := range o.RefuseRecipients {
		if err := checkRefusalCode(code); err != nil {
			return nil, fmt.Errorf("mailsink: refuse %s: %w", addr, err)
		}
		refuse[strings.ToLower(addr)] = code
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		opts:    o,
		log:     logger,
		served:  make(chan struct{}),
		changed: make(chan struct{}),
		refuse:  refuse,
	}

	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 200
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogPrinter{logger}
	srv.AllowInsecureAuth = o.TLS == "none"
	s.server = srv

	var tlsConfig *tls.Config
	if o.TLS != "none" {
		cert, pool, err := selfSigned()
		if err != nil {
			return nil, err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.pool = pool
		srv.TLSConfig = tlsConfig
	}

	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("mailsink: listen %s: %w", o.Addr, err)
	}
	if o.TLS == "tls" {
		l = tls.NewListener(l, tlsConfig)
	}
	s.listener = l
	srv.Addr = l.Addr().String()
	go func() {
		defer close(s.served)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			logger.Warn("mailsink: serve", "error", err)
		}
	}()
	logger.Info("mail sink listening", "addr", srv.Addr, "tls", o.TLS, "auth", o.Username != "")
	return s, nil
}

// Addr is the host:port the sink listens on.
func (s *Sink) Addr() string { return s.listener.Addr().String() }

// Host is the host part of Addr.
func (s *Sink) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port is the port part of Addr.
func (s *Sink) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// CertPool trusts the sink's self-signed certificate (nil with TLS "none").
func (s *Sink) CertPool() *x509.CertPool { return s.pool }

// Close stops the server and closes open sessions.
func (s *Sink) Close() error {
	err := s.server.Close()
	// Serve may not have registered the listener yet; closing it here makes
	// Serve return in any case.
	if lerr := s.listener.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
		err = lerr
	}
	<-s.served
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Messages returns a copy of the messages received so far, oldest first.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Reset forgets the messages received and the refusals made so far (not
// which addresses to refuse).
func (s *Sink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
	s.refused = nil
}

// SetRefusal makes the sink refuse RCPT TO addr with code (400-599) from
// now on; code 0 accepts addr again.
func (s *Sink) SetRefusal(addr string, code int) error {
	if code != 0 {
		if err := checkRefusalCode(code); err != nil {
			return fmt.Errorf("mailsink: refuse %s: %w", addr, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.refuse, strings.ToLower(addr))
	} else {
		s.refuse[strings.ToLower(addr)] = code
	}
	return nil
}

// Refusals returns the RCPT TO commands refused so far, oldest first.
func (s *Sink) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Refusal(nil), s.refused...)
}

func checkRefusalCode(code int) error {
	if code < 400 || code > 599 {
		return fmt.Errorf("reply code %d is not 400-599", code)
	}
	return nil
}

// refusal returns the error to answer RCPT TO addr with, or nil, and
// records a refusal.
func (s *Sink) refusal(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	code, ok := s.refuse[strings.ToLower(addr)]
	if !ok {
		return nil
	}
	s.refused = append(s.refused, Refusal{Address: addr, Code: code})
	if code >= 500 {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable (mailsink refuses " + addr + ")"}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try again later (mailsink defers " + addr + ")"}
}

// Wait blocks until at least n messages were received and returns them all,
// or returns ctx's error together with what arrived so far.
func (s *Sink) Wait(ctx context.Context, n int) ([]Received, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]Received(nil), s.msgs...)
			s.mu.Unlock()
			return out, nil
		}
		changed := s.changed
		have := append([]Received(nil), s.msgs...)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return have, fmt.Errorf("mailsink: waiting for %d messages, have %d: %w", n, len(have), ctx.Err())
		}
	}
}

func (s *Sink) add(r Received) {
	s.mu.Lock()
	s.msgs = append(s.msgs, r)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	attrs := []any{"subject", r.Subject, "to", r.To, "cc", r.CC, "rcpt", r.Rcpt, "message_id", r.MessageID, "tls", r.TLS}
	if r.ParseErr != nil {
		attrs = append(attrs, "parse_error", r.ParseErr)
	}
	s.log.Info("mail received", attrs...)
}

type backend struct{ s *Sink }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{sink: b.s, conn: c}, nil
}

// session is one SMTP connection.
type session struct {
	sink *Sink
	conn *smtp.Conn
	user string
	from string
	rcpt []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.sink.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		okUser := subtle.ConstantTimeCompare([]byte(username), []byte(ss.sink.opts.Username)) == 1
		okPass := subtle.ConstantTimeCompare([]byte(password), []byte(ss.sink.opts.Password)) == 1
		if !okUser || !okPass || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.sink.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	ss.rcpt = nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.sink.opts.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := ss.sink.refusal(to); err != nil {
		return err
	}
	ss.rcpt = append(ss.rcpt, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	rec := parse(raw)
	rec.From = ss.from
	rec.Rcpt = append([]string(nil), ss.rcpt...)
	rec.TLS = isTLS
	rec.Auth = ss.user
	ss.sink.add(rec)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpt = nil
}

func (ss *session) Logout() error { return nil }

// slogPrinter adapts go-smtp's error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("mailsink: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("mailsink: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

// selfSigned makes an ECDSA certificate for the loopback names, valid for
// 30 days, and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mailsink: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mailsink: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vigil mail sink"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mailsink: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("mailsink: certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
