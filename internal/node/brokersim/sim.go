// Package brokersim is a faithful simulator of an AKTIN-style research
// data broker's admin API, for `vigil dev`, tests and benchmarks.
//
// It serves the endpoints the broker monitor polls, with the same paths,
// Bearer authentication, XML documents and caching headers as the real
// broker:
//
//	HEAD|GET /broker/status                 (no auth) <broker-status>
//	GET /broker/node                        <node-list xmlns="http://aktin.org/ns/exchange">
//	GET /broker/node/{id}                   <node>, 404 if unknown
//	GET /broker/node/{id}/stats             <import-statistics> (un-namespaced)
//	GET /broker/node/{id}/{resource}        Java properties XML (versions, rscript, python, import-scripts)
//
// Node documents carry an ETag (url-safe base64 SHA-256 of the body),
// resources and stats also Last-Modified, Content-MD5 and Cache-Control:
// must-revalidate, max-age=300; conditional GETs get 304.
//
// Nodes follow scripted, deterministic behaviours (Healthy, Offline,
// NoImports, ErrorStorm, DWHRestart, VersionDrift, AppearsAt) driven by the
// simulator's clock: Advance moves it, Run follows the wall clock. Imports
// are modelled per hour (a diurnal curve with node-specific jitter), so the
// state at a time does not depend on how the clock got there. All methods
// are safe for concurrent use.
package brokersim

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-health/vigil/internal/httpserve"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/redact"
	"github.com/vigil-health/vigil/internal/sim"
)

// Defaults and limits.
const (
	// DefaultAdminKey is the admin API key when Options.AdminKey is empty
	// (the AKTIN broker's demo key; not a secret).
	DefaultAdminKey = "xxxAdmin1234"
	// DefaultImportsPerHour is a node's mean import rate when
	// NodeSpec.ImportsPerHour is zero.
	DefaultImportsPerHour = 8
	// MaxLastErrors is how many last errors a node's stats list.
	MaxLastErrors = 20
	// cacheControl is what the broker sends with stored node resources.
	cacheControl = "must-revalidate, max-age=300"
)

// Errors of the scripting methods.
var (
	ErrUnknownNode   = errors.New("brokersim: unknown node")
	ErrDuplicateNode = errors.New("brokersim: duplicate node id")
)

// Options configures a Simulator. The zero value has no nodes, uses
// DefaultAdminKey and the wall clock.
type Options struct {
	// AdminKey is the Bearer key the admin endpoints accept.
	AdminKey string
	// Now is the clock Run follows and the simulator's initial time; nil
	// means time.Now.
	Now func() time.Time
	// Latency delays every response.
	Latency time.Duration
	// FailureRate is the fraction of requests answered 503.
	FailureRate float64
	// Seed makes failure injection deterministic.
	Seed uint64
}

// String describes the options with the admin key redacted.
func (o Options) String() string {
	return fmt.Sprintf("brokersim.Options{AdminKey:%s, Latency:%s, FailureRate:%g}", redact.Secret(o.AdminKey), o.Latency, o.FailureRate)
}

// GoString is String, so %#v redacts too.
func (o Options) GoString() string { return o.String() }

// NodeSpec describes one simulated node.
type NodeSpec struct {
	// ID is the broker node id; empty means the next free number.
	ID string
	// Name is the common name in the node's clientDN; empty means
	// "Klinikum <ID>".
	Name string
	// Behaviour is the scripted behaviour.
	Behaviour Behaviour
	// At is when the behaviour starts (zero: when the node is added). For
	// AppearsAt it is required; for VersionDrift it is when the node
	// upgrades to the current release (zero: never).
	At time.Time
	// ImportsPerHour is the mean import rate; 0 means
	// DefaultImportsPerHour.
	ImportsPerHour int
	// Omit lists resources the node never publishes ("stats" or a
	// broker.Resources name); they answer 404.
	Omit []string
}

func (s NodeSpec) clientDN() string {
	esc := strings.NewReplacer(`\`, `\\`, ",", `\,`, "+", `\+`, "=", `\=`)
	return "CN=" + esc.Replace(s.Name) + ",O=AKTIN,C=DE"
}

// NodeState is a node's simulated truth at the simulator's clock, for
// test assertions.
type NodeState struct {
	Spec NodeSpec
	// Listed is false before an AppearsAt node appears.
	Listed bool
	// Node is the broker's entry (zero when not listed).
	Node broker.Node
	// Stats are the node's import statistics (nil when not listed or
	// omitted).
	Stats *broker.ImportStats
	// DWHVersion is the reported dwh-j2ee value, e.g. "dwh-j2ee-1.6".
	DWHVersion string
}

// Simulator is a simulated broker. Build it with New.
type Simulator struct {
	adminKey string
	nowFn    func() time.Time
	started  time.Time
	requests atomic.Int64
	version  atomic.Uint64 // bumps when the fleet or a script changes
	// Faults injects latency and 503s (SetLatency, SetFailureRate).
	*sim.Faults

	mu    sync.RWMutex
	clock time.Time
	nodes map[string]*node
	order []*node

	listMu sync.Mutex
	list   struct {
		at      time.Time
		version uint64
		resp    *response
	}
}

// New returns a simulator configured by opts, with no nodes.
func New(opts Options) *Simulator {
	s := &Simulator{
		adminKey: opts.AdminKey,
		nowFn:    opts.Now,
		nodes:    make(map[string]*node),
		Faults:   sim.NewFaults(opts.Latency, opts.FailureRate, opts.Seed),
	}
	if s.adminKey == "" {
		s.adminKey = DefaultAdminKey
	}
	if s.nowFn == nil {
		s.nowFn = time.Now
	}
	s.clock = s.nowFn()
	s.started = s.clock
	return s
}

// Now returns the simulator's clock.
func (s *Simulator) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clock
}

// Advance moves the clock to now (never backwards) and every node's state
// with it.
func (s *Simulator) Advance(now time.Time) {
	s.mu.Lock()
	if now.After(s.clock) {
		s.clock = now
	}
	now = s.clock
	nodes := slices.Clone(s.order)
	s.mu.Unlock()
	for _, n := range nodes {
		n.mu.Lock()
		n.advance(now)
		n.mu.Unlock()
	}
}

// Run advances the clock to Options.Now every interval until ctx is done.
// It blocks; run it with go.
func (s *Simulator) Run(ctx context.Context, every time.Duration) {
	sim.Every(ctx, every, func() { s.Advance(s.nowFn()) })
}

// AddNode adds a node and returns its spec with defaults filled in.
func (s *Simulator) AddNode(spec NodeSpec) (NodeSpec, error) {
	if spec.Behaviour < Healthy || spec.Behaviour > AppearsAt {
		return spec, fmt.Errorf("brokersim: unknown behaviour %d", int(spec.Behaviour))
	}
	if spec.Behaviour == AppearsAt && spec.At.IsZero() {
		return spec, errors.New("brokersim: AppearsAt needs At")
	}
	if spec.ImportsPerHour < 0 {
		return spec, fmt.Errorf("brokersim: negative ImportsPerHour %d", spec.ImportsPerHour)
	}
	if spec.ImportsPerHour == 0 {
		spec.ImportsPerHour = DefaultImportsPerHour
	}
	spec.Omit = slices.Clone(spec.Omit)
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.ID == "" {
		spec.ID = strconv.FormatUint(s.nextID(), 10)
	}
	if !validID(spec.ID) {
		return spec, fmt.Errorf("brokersim: invalid node id %q", spec.ID)
	}
	if _, dup := s.nodes[spec.ID]; dup {
		return spec, fmt.Errorf("%w: %q", ErrDuplicateNode, spec.ID)
	}
	if spec.Name == "" {
		spec.Name = "Klinikum " + spec.ID
	}
	n := newNode(spec, s.clock)
	n.advance(s.clock)
	s.nodes[spec.ID] = n
	i, _ := slices.BinarySearchFunc(s.order, spec.ID, func(e *node, id string) int { return broker.CompareIDs(e.spec.ID, id) })
	s.order = slices.Insert(s.order, i, n)
	s.version.Add(1)
	return spec, nil
}

// nextID returns one more than the highest numeric id; s.mu must be held.
func (s *Simulator) nextID() uint64 {
	var top uint64
	for id := range s.nodes {
		if v, err := strconv.ParseUint(id, 10, 64); err == nil && v > top {
			top = v
		}
	}
	return top + 1
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return id != "." && id != ".."
}

// SetBehaviour scripts node id to behave as b from `from` on (zero: the
// current clock), e.g. Healthy to bring an offline node back or DWHRestart
// for another restart. AppearsAt cannot be scripted later.
func (s *Simulator) SetBehaviour(id string, b Behaviour, from time.Time) error {
	if b < Healthy || b > VersionDrift {
		return fmt.Errorf("brokersim: behaviour %s cannot be scripted later", b)
	}
	n, now, err := s.node(id)
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = now
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	from = later(from, n.phases[0].from)
	i := len(n.phases)
	for i > 1 && n.phases[i-1].from.After(from) {
		i--
	}
	n.phases = slices.Insert(n.phases, i, phase{from: from, b: b})
	if i < n.applied || from.Before(n.upTo) {
		n.reset()
	}
	n.advance(now)
	n.gen++
	s.version.Add(1)
	return nil
}

func (s *Simulator) node(id string) (*node, time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.nodes[id]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	return n, s.clock, nil
}

// State returns node id's simulated truth at the clock.
func (s *Simulator) State(id string) (NodeState, error) {
	n, now, err := s.node(id)
	if err != nil {
		return NodeState{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.advance(now)
	st := NodeState{Spec: n.spec}
	st.Spec.Omit = slices.Clone(n.spec.Omit)
	st.Node, st.Listed = n.contact(now)
	if st.Listed && !slices.Contains(n.spec.Omit, "stats") {
		st.Stats = n.importStats()
	}
	props, _ := resourceProps(n, n.outdated, broker.ResourceVersions)
	for _, p := range props {
		if p.Key == "dwh-j2ee" {
			st.DWHVersion = p.Value
		}
	}
	return st, nil
}

// NodeIDs returns the ids of every node added, listed or not, in id order.
func (s *Simulator) NodeIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := make([]string, len(s.order))
	for i, n := range s.order {
		ids[i] = n.spec.ID
	}
	return ids
}

// Requests returns how many requests the handler has received.
func (s *Simulator) Requests() int { return int(s.requests.Load()) }

// response is a rendered document with its validators.
type response struct {
	body     []byte
	etag     string
	md5      string
	modified time.Time // zero: no Last-Modified
	stored   bool      // a stored node resource: Cache-Control, Content-MD5
}

func newResponse(body []byte, modified time.Time, stored bool) *response {
	sum := sha256.Sum256(body)
	r := &response{body: body, etag: `"` + base64.URLEncoding.EncodeToString(sum[:]) + `"`, modified: modified, stored: stored}
	if stored {
		m := md5.Sum(body)
		r.md5 = base64.StdEncoding.EncodeToString(m[:])
	}
	return r
}

// renderCache holds a node's rendered stats and resources.
type renderCache struct {
	statsGen uint64
	stats    *response
	res      map[resKey]*response
}

type resKey struct {
	name     string
	outdated bool
}

// Handler returns the HTTP handler serving the broker API.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /broker/status", s.handleStatus)
	mux.HandleFunc("GET /broker/node", s.admin(s.handleNodes))
	mux.HandleFunc("GET /broker/node/{id}", s.admin(s.handleNode))
	mux.HandleFunc("GET /broker/node/{id}/{resource}", s.admin(s.handleResource))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not found", http.StatusNotFound)
	})
	faulty := s.Wrap(mux, func(w http.ResponseWriter) {
		http.Error(w, "service temporarily unavailable", http.StatusServiceUnavailable)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		faulty.ServeHTTP(w, r)
	})
}

// admin requires the admin key.
func (s *Simulator) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.adminKey)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="broker"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (s *Simulator) handleStatus(w http.ResponseWriter, _ *http.Request) {
	now := s.Now()
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(brokerStatusXML(now, now.Sub(s.started)))
}

func (s *Simulator) handleNodes(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	now := s.clock
	nodes := slices.Clone(s.order)
	s.mu.RUnlock()
	version := s.version.Load()
	s.listMu.Lock()
	resp := s.list.resp
	if resp == nil || !s.list.at.Equal(now) || s.list.version != version {
		entries := make([]broker.Node, 0, len(nodes))
		for _, n := range nodes {
			n.mu.Lock()
			e, ok := n.contact(now)
			n.mu.Unlock()
			if ok {
				entries = append(entries, e)
			}
		}
		resp = newResponse(nodeListXML(entries), time.Time{}, false)
		s.list.at, s.list.version, s.list.resp = now, version, resp
	}
	s.listMu.Unlock()
	serve(w, r, resp)
}

func (s *Simulator) handleNode(w http.ResponseWriter, r *http.Request) {
	n, now, err := s.node(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	n.mu.Lock()
	e, ok := n.contact(now)
	n.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	serve(w, r, newResponse(nodeXML(e), time.Time{}, false))
}

func (s *Simulator) handleResource(w http.ResponseWriter, r *http.Request) {
	n, now, err := s.node(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	name := r.PathValue("resource")
	resp := n.resource(name, now)
	if resp == nil {
		http.NotFound(w, r)
		return
	}
	serve(w, r, resp)
}

// resource renders (or reuses) resource name at now; nil when absent.
func (n *node) resource(name string, now time.Time) *response {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, listed := n.phaseAt(now); !listed || slices.Contains(n.spec.Omit, name) {
		return nil
	}
	n.advance(now)
	if name == "stats" {
		if n.body.stats == nil || n.body.statsGen != n.gen {
			n.body.stats = newResponse(statsXML(&n.st), n.changed, true)
			n.body.statsGen = n.gen
		}
		return n.body.stats
	}
	key := resKey{name, n.outdated}
	if resp, ok := n.body.res[key]; ok {
		// Last-Modified follows the latest version change.
		if resp.modified.Equal(n.verAt) {
			return resp
		}
	}
	props, ok := resourceProps(n, n.outdated, name)
	if !ok {
		return nil
	}
	if n.body.res == nil {
		n.body.res = make(map[resKey]*response)
	}
	resp := newResponse(propertiesXML(props), n.verAt, true)
	n.body.res[key] = resp
	return resp
}

// serve writes resp, or 304 when the request's validators match.
func serve(w http.ResponseWriter, r *http.Request, resp *response) {
	h := w.Header()
	h.Set("ETag", resp.etag)
	if !resp.modified.IsZero() {
		h.Set("Last-Modified", resp.modified.UTC().Format(http.TimeFormat))
	}
	if resp.stored {
		h.Set("Cache-Control", cacheControl)
	}
	if notModified(r, resp) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if resp.md5 != "" {
		h.Set("Content-MD5", resp.md5)
	}
	h.Set("Content-Type", "application/xml;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp.body)
	}
}

func notModified(r *http.Request, resp *response) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for tag := range strings.SplitSeq(inm, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == resp.etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !resp.modified.IsZero() {
		if t, err := http.ParseTime(ims); err == nil {
			return !resp.modified.Truncate(time.Second).After(t)
		}
	}
	return false
}

// Start serves the simulator on addr (e.g. "127.0.0.1:0") and returns its
// base URL and a function that shuts the server down.
func (s *Simulator) Start(addr string) (url string, stop func(), err error) {
	url, stop, err = httpserve.Start(addr, s.Handler())
	if err != nil {
		return "", nil, fmt.Errorf("brokersim: %w", err)
	}
	return url, stop, nil
}
