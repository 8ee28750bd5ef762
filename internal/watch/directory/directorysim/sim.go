// Package directorysim is a faithful simulator of the service directory's
// REST API, for `vigil dev` and tests.
//
// It serves the two DoS endpoints Vigil uses, with the same paths, HTTP
// Basic authentication and JSON envelope as the real directory:
//
//	GET /app/controllers/api/v1.0/services/byServiceType/{role}/{postcode}/{distance}/{gp}/0/0/0/{types}/{n}
//	GET /app/controllers/api/v1.0/services/byServiceId/{id}
//
// answering {"success": {"code": 200, "serviceCount": n, "services": [...]}}
// with "updated" dates and times written as Europe/London wall-clock time.
// Requests without valid credentials get 401; each account is rate limited
// (429 with Retry-After); latency and 503 failures can be injected; and
// tests or `vigil dev` script capacity changes, ROBOT resets and removals
// while it runs. All methods are safe for concurrent use.
package directorysim

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-health/vigil/internal/httpserve"
	"github.com/vigil-health/vigil/internal/sim"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Request paths, as ServeMux patterns.
const (
	searchPattern = "/app/controllers/api/v1.0/services/byServiceType/{role}/{postcode}/{distance}/{gp}/{a}/{b}/{c}/{types}/{n}"
	byIDPattern   = "/app/controllers/api/v1.0/services/byServiceId/{id}"
)

// metresPerMile converts search distances (miles) to OSGB36 grid metres.
const metresPerMile = 1609.344

// ErrUnknownService is returned by the scripting methods for an id that is
// not in the catalogue.
var ErrUnknownService = errors.New("directorysim: unknown service")

// Account is a simulated directory login. Its String, GoString, LogValue
// and MarshalJSON redact the password.
type Account struct {
	// Password is the Basic-auth password.
	Password string
	// Role is the account's role. A Service with Roles is visible only to
	// accounts whose Role is listed.
	Role string
}

// String returns the role with the password redacted.
func (a Account) String() string {
	return fmt.Sprintf("Account{Role:%q, Password:[REDACTED]}", a.Role)
}

// GoString is String, so %#v redacts too.
func (a Account) GoString() string { return a.String() }

// LogValue implements slog.LogValuer without the password.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role", a.Role), slog.String("password", "[REDACTED]"))
}

// MarshalJSON writes the role with the password redacted.
func (a Account) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Role     string `json:"role"`
		Password string `json:"password"`
	}{a.Role, "[REDACTED]"})
}

// Location is an OSGB36 grid reference in metres.
type Location struct {
	Easting  int
	Northing int
}

// Service is one simulated directory entry.
type Service struct {
	// ID is the service id, a string of digits (served as a JSON number).
	ID       string
	Name     string
	TypeID   string
	TypeName string
	Postcode string
	Easting  int
	Northing int
	Region   string
	// Capacity is HIGH, LOW, NONE or "".
	Capacity  string
	UpdatedBy string
	// UpdatedAt is served as Europe/London "dd/mm/yyyy" and "HH:MM".
	UpdatedAt time.Time
	// Roles, when not empty, limits who sees the service to accounts of
	// these roles (searches and lookups alike).
	Roles []string
}

// RAG returns the directory's colour for a capacity: HIGH → GREEN,
// LOW → AMBER, NONE → RED and anything else → "".
func RAG(capacity string) string {
	switch capacity {
	case directory.CapacityHigh:
		return "GREEN"
	case directory.CapacityLow:
		return "AMBER"
	case directory.CapacityNone:
		return "RED"
	}
	return ""
}

// Options configures a Simulator. The zero value serves the demo
// catalogue to DefaultAccounts with no limit, latency or failures.
type Options struct {
	// Accounts maps username → account; nil means DefaultAccounts().
	Accounts map[string]Account
	// RatePerSecond limits each account (burst ceil(rate)); excess requests
	// get 429 with Retry-After. 0 means unlimited. Real time is used.
	RatePerSecond float64
	// Latency delays every response.
	Latency time.Duration
	// FailureRate is the fraction of requests answered 503.
	FailureRate float64
	// Seed makes failures and RandomChanges deterministic.
	Seed uint64
	// Now stamps capacity changes; nil means time.Now.
	Now func() time.Time
	// Services is the catalogue; nil means DemoServices().
	Services []Service
	// Locations maps search postcodes to grid references; nil means
	// DemoLocations(). Every service's postcode is known as well.
	Locations map[string]Location
}

type entry struct {
	Service
	removed bool
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Simulator is a simulated directory. Build it with New.
type Simulator struct {
	accounts  map[string]Account
	locations map[string]Location
	rate      float64
	now       func() time.Time
	zone      *time.Location
	requests  atomic.Int64
	// Faults injects latency and 503s (SetLatency, SetFailureRate).
	*sim.Faults

	mu      sync.Mutex
	rng     *rand.Rand
	order   []*entry
	byID    map[string]*entry
	buckets map[string]*bucket
}

// New returns a simulator configured by opts.
func New(opts Options) *Simulator {
	s := &Simulator{
		accounts:  opts.Accounts,
		locations: make(map[string]Location),
		rate:      math.Max(0, opts.RatePerSecond),
		now:       opts.Now,
		rng:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		Faults:    sim.NewFaults(opts.Latency, opts.FailureRate, opts.Seed),
		byID:      make(map[string]*entry),
		buckets:   make(map[string]*bucket),
	}
	if s.accounts == nil {
		s.accounts = DefaultAccounts()
	} else {
		s.accounts = maps.Clone(opts.Accounts)
	}
	if s.now == nil {
		s.now = time.Now
	}
	zone, err := time.LoadLocation(directory.DirectoryZone)
	if err != nil {
		zone = time.UTC
	}
	s.zone = zone
	services := opts.Services
	if services == nil {
		services = DemoServices()
	}
	for _, svc := range services {
		if _, dup := s.byID[svc.ID]; dup || svc.ID == "" {
			continue
		}
		svc.Roles = slices.Clone(svc.Roles)
		e := &entry{Service: svc}
		s.order = append(s.order, e)
		s.byID[svc.ID] = e
	}
	locations := opts.Locations
	if locations == nil {
		locations = DemoLocations()
	}
	for pc, loc := range locations {
		s.locations[normalizePostcode(pc)] = loc
	}
	for _, e := range s.order {
		if key := normalizePostcode(e.Postcode); key != "" {
			if _, ok := s.locations[key]; !ok {
				s.locations[key] = Location{Easting: e.Easting, Northing: e.Northing}
			}
		}
	}
	return s
}

func normalizePostcode(pc string) string {
	return strings.ToUpper(strings.Join(strings.Fields(pc), ""))
}

// Handler returns the HTTP handler serving the directory API, and the
// simulator's control endpoint:
//
//	POST /sim/services/{id}/capacity  {"capacity": "LOW", "by": "demo.user"}
//
// which sets a service's capacity (HIGH, LOW, NONE or "" for a reset; by
// defaults to "sim.control") and answers the service as the directory now
// serves it. It takes the same Basic credentials as the API, but neither
// the rate limit nor injected faults, so a demo or a test can flip a status
// on purpose.
func (s *Simulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+searchPattern, s.handleSearch)
	mux.HandleFunc("GET "+byIDPattern, s.handleByID)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	control := http.NewServeMux()
	control.HandleFunc("POST "+capacityControlPattern, s.handleSetCapacity)
	control.HandleFunc("/sim/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Context().Value(userKey{}).(string)
		if wait, ok := s.allow(user); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "too many requests")
			return
		}
		mux.ServeHTTP(w, r)
	})
	faulty := s.Wrap(api, func(w http.ResponseWriter) {
		writeError(w, http.StatusServiceUnavailable, "service temporarily unavailable")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		user, pass, ok := r.BasicAuth()
		acc, known := s.accounts[user]
		if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(acc.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Directory of Services"`)
			writeError(w, http.StatusUnauthorized, "Authentication Denied")
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), accountKey{}, acc), userKey{}, user)
		if strings.HasPrefix(r.URL.Path, "/sim/") {
			control.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		faulty.ServeHTTP(w, r.WithContext(ctx))
	})
}

// capacityControlPattern is the control endpoint's path.
const capacityControlPattern = "/sim/services/{id}/capacity"

// controlBy is who a control request changes a capacity as, by default.
const controlBy = "sim.control"

// handleSetCapacity is POST /sim/services/{id}/capacity.
func (s *Simulator) handleSetCapacity(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Capacity *string `json:"capacity"`
		By       string  `json:"by"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Capacity == nil {
		writeError(w, http.StatusBadRequest, `send {"capacity": "HIGH", "LOW", "NONE" or ""}`)
		return
	}
	by := strings.TrimSpace(body.By)
	if by == "" {
		by = controlBy
	}
	id := r.PathValue("id")
	err := s.SetCapacity(id, strings.ToUpper(strings.TrimSpace(*body.Capacity)), by)
	switch {
	case errors.Is(err, ErrUnknownService):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no service %q", id))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "capacity must be HIGH, LOW, NONE or \"\"")
		return
	}
	s.mu.Lock()
	out := s.render(s.byID[id])
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, envelope{Success: success{Code: http.StatusOK, ServiceCount: 1, Services: []serviceJSON{out}}})
}

type (
	accountKey struct{}
	userKey    struct{}
)

// allow takes a token from user's bucket, or says how long until one is
// available.
func (s *Simulator) allow(user string) (time.Duration, bool) {
	if s.rate <= 0 {
		return 0, true
	}
	burst := math.Max(1, math.Ceil(s.rate))
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[user]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		s.buckets[user] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*s.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / s.rate * float64(time.Second)), false
}

func (s *Simulator) handleSearch(w http.ResponseWriter, r *http.Request) {
	acc, _ := r.Context().Value(accountKey{}).(Account)
	loc, ok := s.locations[normalizePostcode(r.PathValue("postcode"))]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("postcode %q not found", r.PathValue("postcode")))
		return
	}
	miles, err := strconv.Atoi(r.PathValue("distance"))
	if err != nil || miles < 0 {
		writeError(w, http.StatusBadRequest, "invalid distance")
		return
	}
	limit, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || limit < 1 {
		writeError(w, http.StatusBadRequest, "invalid number per type")
		return
	}
	types := make(map[string]int)
	for t := range strings.SplitSeq(r.PathValue("types"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			types[t] = 0
		}
	}
	if len(types) == 0 {
		writeError(w, http.StatusBadRequest, "no service types")
		return
	}
	type hit struct {
		e    *entry
		dist float64
	}
	var hits []hit
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.order {
		if _, ok := types[e.TypeID]; !ok || !e.visibleTo(acc) {
			continue
		}
		d := math.Hypot(float64(e.Easting-loc.Easting), float64(e.Northing-loc.Northing))
		if d <= float64(miles)*metresPerMile {
			hits = append(hits, hit{e, d})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if c := cmp.Compare(a.dist, b.dist); c != 0 {
			return c
		}
		return strings.Compare(a.e.ID, b.e.ID)
	})
	out := make([]serviceJSON, 0, len(hits))
	for _, h := range hits {
		if types[h.e.TypeID] >= limit {
			continue
		}
		types[h.e.TypeID]++
		out = append(out, s.render(h.e))
	}
	writeJSON(w, http.StatusOK, envelope{Success: success{Code: http.StatusOK, ServiceCount: len(out), Services: out}})
}

func (s *Simulator) handleByID(w http.ResponseWriter, r *http.Request) {
	acc, _ := r.Context().Value(accountKey{}).(Account)
	out := []serviceJSON{}
	s.mu.Lock()
	if e, ok := s.byID[strings.TrimSpace(r.PathValue("id"))]; ok && e.visibleTo(acc) {
		out = append(out, s.render(e))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, envelope{Success: success{Code: http.StatusOK, ServiceCount: len(out), Services: out}})
}

func (e *entry) visibleTo(acc Account) bool {
	return !e.removed && (len(e.Roles) == 0 || slices.Contains(e.Roles, acc.Role))
}

// JSON shapes of the DoS API.
type (
	envelope struct {
		Success success `json:"success"`
	}
	success struct {
		Code         int           `json:"code"`
		ServiceCount int           `json:"serviceCount"`
		Services     []serviceJSON `json:"services"`
	}
	serviceJSON struct {
		ID       any        `json:"id"`
		Name     string     `json:"name"`
		Type     typeJSON   `json:"type"`
		Postcode string     `json:"postcode"`
		Easting  int        `json:"easting"`
		Northing int        `json:"northing"`
		Region   regionJSON `json:"region"`
		Capacity struct {
			Status struct {
				Human string `json:"human"`
				RAG   string `json:"rag"`
			} `json:"status"`
			Updated struct {
				By   string `json:"by"`
				Date string `json:"date"`
				Time string `json:"time"`
			} `json:"updated"`
		} `json:"capacity"`
	}
	typeJSON struct {
		ID   any    `json:"id"`
		Name string `json:"name"`
	}
	regionJSON struct {
		Name string `json:"name"`
	}
	errorJSON struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
)

// render builds the JSON of e; s.mu must be held.
func (s *Simulator) render(e *entry) serviceJSON {
	var j serviceJSON
	j.ID = numberOrString(e.ID)
	j.Name = e.Name
	j.Type = typeJSON{ID: numberOrString(e.TypeID), Name: e.TypeName}
	j.Postcode = e.Postcode
	j.Easting, j.Northing = e.Easting, e.Northing
	j.Region.Name = e.Region
	j.Capacity.Status.Human = e.Capacity
	j.Capacity.Status.RAG = RAG(e.Capacity)
	j.Capacity.Updated.By = e.UpdatedBy
	if !e.UpdatedAt.IsZero() {
		local := e.UpdatedAt.In(s.zone)
		j.Capacity.Updated.Date = local.Format("02/01/2006")
		j.Capacity.Updated.Time = local.Format("15:04")
	}
	return j
}

// numberOrString serves all-digit ids as JSON numbers, as DoS does.
func numberOrString(id string) any {
	if id == "" || strings.TrimLeft(id, "0123456789") != "" || (len(id) > 1 && id[0] == '0') {
		return id
	}
	return json.Number(id)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var e errorJSON
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, code, e)
}

// Start serves the simulator on addr (e.g. "127.0.0.1:0") and returns its
// base URL and a function that shuts the server down.
func (s *Simulator) Start(addr string) (url string, stop func(), err error) {
	url, stop, err = httpserve.Start(addr, s.Handler())
	if err != nil {
		return "", nil, fmt.Errorf("directorysim: %w", err)
	}
	return url, stop, nil
}

// Requests returns how many requests the handler has received.
func (s *Simulator) Requests() int { return int(s.requests.Load()) }

// Get returns a copy of the service id (removed or not).
func (s *Simulator) Get(id string) (Service, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return Service{}, false
	}
	svc := e.Service
	svc.Roles = slices.Clone(svc.Roles)
	return svc, true
}

// SetCapacity sets the capacity of id (HIGH, LOW, NONE or "") as changed
// by `by` now.
func (s *Simulator) SetCapacity(id, capacity, by string) error {
	switch capacity {
	case directory.CapacityHigh, directory.CapacityLow, directory.CapacityNone, "":
	default:
		return fmt.Errorf("directorysim: invalid capacity %q", capacity)
	}
	if by == "" {
		return errors.New("directorysim: SetCapacity needs who changed it")
	}
	return s.update(id, func(e *entry) {
		e.Capacity, e.UpdatedBy, e.UpdatedAt = capacity, by, s.now()
	})
}

// RobotReset performs the directory's automatic reset on id: capacity ""
// updated by ROBOT now.
func (s *Simulator) RobotReset(id string) error {
	return s.update(id, func(e *entry) {
		e.Capacity, e.UpdatedBy, e.UpdatedAt = "", directory.RobotUser, s.now()
	})
}

// Remove hides id from searches and lookups until Restore.
func (s *Simulator) Remove(id string) error {
	return s.update(id, func(e *entry) { e.removed = true })
}

// Restore undoes Remove.
func (s *Simulator) Restore(id string) error {
	return s.update(id, func(e *entry) { e.removed = false })
}

func (s *Simulator) update(id string, f func(*entry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownService, id)
	}
	f(e)
	return nil
}

// RandomChanges changes a random fraction of the services every interval
// until ctx is done: mostly flips between HIGH, LOW and NONE by a demo
// user, occasionally a ROBOT reset. It blocks; run it with go. The choices
// follow Options.Seed.
func (s *Simulator) RandomChanges(ctx context.Context, every time.Duration, fraction float64) {
	sim.Every(ctx, every, func() { s.randomStep(fraction) })
}

// randomStep applies one round of RandomChanges and returns the ids it
// changed.
func (s *Simulator) randomStep(fraction float64) []string {
	capacities := []string{directory.CapacityHigh, directory.CapacityLow, directory.CapacityNone}
	users := []string{"demo.user", "duty.manager", "site.coordinator"}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var changed []string
	for _, e := range s.order {
		if e.removed || s.rng.Float64() >= fraction {
			continue
		}
		if s.rng.Float64() < 0.1 {
			e.Capacity, e.UpdatedBy = "", directory.RobotUser
		} else {
			next := capacities[s.rng.IntN(len(capacities))]
			for next == e.Capacity {
				next = capacities[s.rng.IntN(len(capacities))]
			}
			e.Capacity, e.UpdatedBy = next, users[s.rng.IntN(len(users))]
		}
		e.UpdatedAt = now
		changed = append(changed, e.ID)
	}
	return changed
}
