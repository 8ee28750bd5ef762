package brokersim

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/vigil-health/vigil/internal/node/broker"
)

// Behaviour is a scripted way a simulated node behaves from some time on.
type Behaviour int

// Behaviours. Every node imports like Healthy outside its scripted phase.
const (
	// Healthy: the node stays in contact and imports about ImportsPerHour
	// encounters an hour (fewer at night), with an error rate of about
	// 0.2 %, below 1 % on every day once ImportsPerHour is 5 or more.
	Healthy Behaviour = iota
	// Offline: from At the node stops contacting the broker; last-contact
	// stays at At, its stats and resources freeze.
	Offline
	// NoImports: from At the node keeps contacting the broker, but nothing
	// is imported: last-write and the counters freeze.
	NoImports
	// ErrorStorm: from At about 15 % of what the node processes is invalid
	// (12 %) or failed (3 %); every hour adds a new distinct error and the
	// repeats of a recurring one grow.
	ErrorStorm
	// DWHRestart: at At the node's DWH restarts: start = At, counters and
	// last errors reset to zero; it imports healthily afterwards.
	DWHRestart
	// VersionDrift: the node runs OutdatedDWHVersion (dwh-j2ee and dwh-api
	// behind CurrentDWHVersion) since it was installed; with a non-zero At
	// it upgrades to the current release at At.
	VersionDrift
	// AppearsAt: the broker does not know the node before At; at At it is
	// installed (DWH start = At, counters zero) and imports healthily.
	AppearsAt
)

var behaviourNames = []string{"healthy", "offline", "no-imports", "error-storm", "dwh-restart", "version-drift", "appears-at"}

// String returns the behaviour's name, e.g. "error-storm".
func (b Behaviour) String() string {
	if b >= 0 && int(b) < len(behaviourNames) {
		return behaviourNames[b]
	}
	return fmt.Sprintf("Behaviour(%d)", int(b))
}

// Behaviours lists every behaviour.
func Behaviours() []Behaviour {
	return []Behaviour{Healthy, Offline, NoImports, ErrorStorm, DWHRestart, VersionDrift, AppearsAt}
}

// phase is one scripted behaviour from a time on.
type phase struct {
	from time.Time
	b    Behaviour
}

// Rates of the import model.
const (
	healthyInvalidRate = 0.002
	stormInvalidRate   = 0.12
	stormFailedRate    = 0.03
	updatedShare       = 0.25
)

// diurnal weights the hours of the (UTC) day; they average 1.
var diurnal = func() [24]float64 {
	raw := [24]float64{0.3, 0.25, 0.2, 0.2, 0.25, 0.35, 0.6, 0.9, 1.3, 1.5, 1.6, 1.6, 1.55, 1.5, 1.45, 1.4, 1.35, 1.3, 1.25, 1.15, 1.0, 0.85, 0.6, 0.45}
	var sum float64
	for _, w := range raw {
		sum += w
	}
	for i := range raw {
		raw[i] *= 24 / sum
	}
	return raw
}()

// errorEntry is one of a node's last errors.
type errorEntry struct {
	at      time.Time
	repeats int64
	content string
}

// stats is a node's DWH import statistics.
type stats struct {
	start                               time.Time
	lastWrite, lastReject               time.Time
	imported, updated, invalid, failed  int64
	carryInvalid, carryFailed, carryUpd float64
	errors                              []errorEntry
	events                              int64 // error events so far (picks messages)
}

// node is one simulated node. spec, seed and origin are immutable; the rest
// is guarded by mu.
type node struct {
	spec   NodeSpec
	seed   uint64
	origin time.Time

	mu       sync.Mutex
	phases   []phase // sorted by from; phases[0].from == origin
	applied  int     // phases applied to st
	upTo     time.Time
	st       stats
	changed  time.Time // when st last changed (Last-Modified)
	outdated bool
	verAt    time.Time // when outdated last changed
	gen      uint64    // bumps when st changes
	body     renderCache
}

func newNode(spec NodeSpec, created time.Time) *node {
	h := fnv.New64a()
	_, _ = h.Write([]byte(spec.ID))
	seed := h.Sum64()
	n := &node{spec: spec, seed: seed}
	switch spec.Behaviour {
	case AppearsAt:
		n.origin = spec.At
		n.phases = []phase{{spec.At, AppearsAt}}
	case VersionDrift:
		n.origin = installTime(seed, created)
		n.phases = []phase{{n.origin, VersionDrift}}
		if !spec.At.IsZero() {
			n.phases = append(n.phases, phase{later(spec.At, n.origin), Healthy})
		}
	default:
		n.origin = installTime(seed, created)
		n.phases = []phase{{n.origin, Healthy}}
		if spec.Behaviour != Healthy {
			at := spec.At
			if at.IsZero() {
				at = created
			}
			n.phases = append(n.phases, phase{later(at, n.origin), spec.Behaviour})
		}
	}
	n.reset()
	return n
}

// installTime is when a node added at created was installed: 14 to 60
// days earlier, at a node-specific minute.
func installTime(seed uint64, created time.Time) time.Time {
	days := 14 + int(seed%47)
	return created.Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Hour).
		Add(time.Duration(mix(seed, 1)%3600) * time.Second)
}

// reset puts the state back to the installation, to be replayed.
func (n *node) reset() {
	n.applied = 0
	n.upTo = n.origin.Truncate(time.Hour)
	n.st = stats{}
	n.outdated = false
	n.gen++
	n.applyNext()
}

// applyNext applies phases[applied] at its start.
func (n *node) applyNext() {
	p := n.phases[n.applied]
	n.applied++
	n.gen++
	switch p.b {
	case AppearsAt:
		n.st = stats{start: p.from}
		n.changed = p.from
		n.setOutdated(false, p.from)
	case DWHRestart:
		n.st = stats{start: p.from, events: n.st.events}
		n.changed = p.from
		n.setOutdated(false, p.from)
	case Healthy:
		if n.applied == 1 {
			n.st = stats{start: p.from}
			n.changed = p.from
		}
		n.setOutdated(false, p.from)
	case VersionDrift:
		if n.applied == 1 {
			n.st = stats{start: p.from}
			n.changed = p.from
		}
		n.setOutdated(true, p.from)
	}
}

func (n *node) setOutdated(v bool, at time.Time) {
	if n.applied == 1 || n.outdated != v {
		n.verAt = at
	}
	n.outdated = v
}

// advance moves the state to t; n.mu must be held.
func (n *node) advance(t time.Time) {
	for {
		end := n.upTo.Add(time.Hour)
		if n.applied < len(n.phases) {
			if p := n.phases[n.applied].from; !p.After(t) && p.Before(end) {
				n.applyNext()
				continue
			}
		}
		if end.After(t) {
			return
		}
		n.hour(n.upTo)
		n.upTo = end
	}
}

// current returns the phase in force at the state's position.
func (n *node) current() Behaviour { return n.phases[n.applied-1].b }

// hour counts the imports of the hour starting at h.
func (n *node) hour(h time.Time) {
	b := n.current()
	if b == Offline || b == NoImports {
		return
	}
	idx := uint64(h.Unix() / 3600)
	rate := float64(max(n.spec.ImportsPerHour, 0)) * diurnal[h.UTC().Hour()]
	jitter := 0.7 + 0.6*unit(mix(n.seed, idx, 2))
	expect := rate * jitter
	count := int64(math.Floor(expect))
	if unit(mix(n.seed, idx, 3)) < expect-float64(count) {
		count++
	}
	invalidRate, failedRate := healthyInvalidRate, 0.0
	if b == ErrorStorm {
		invalidRate, failedRate = stormInvalidRate, stormFailedRate
	}
	st := &n.st
	invalid := take(&st.carryInvalid, float64(count)*invalidRate)
	failed := take(&st.carryFailed, float64(count)*failedRate)
	ok := max(count-invalid-failed, 0)
	updated := take(&st.carryUpd, float64(ok)*updatedShare)
	imported := ok - updated
	if count == 0 {
		return
	}
	end := h.Add(time.Hour)
	stamp := func(salt uint64) time.Time {
		ts := h.Add(time.Duration(mix(n.seed, idx, salt)%3600_000) * time.Millisecond)
		if ts.Before(st.start) {
			ts = st.start.Add(end.Sub(st.start) / 2)
		}
		return ts
	}
	st.imported += imported
	st.updated += updated
	st.invalid += invalid
	st.failed += failed
	if ok > 0 {
		st.lastWrite = stamp(4)
	}
	if invalid+failed > 0 {
		st.lastReject = stamp(5)
		for k := range invalid + failed {
			at := stamp(10 + uint64(k))
			if b == ErrorStorm && k > 0 {
				n.recordError(at, recurringStormError)
			} else {
				n.recordError(at, n.errorText(k >= invalid))
			}
		}
	}
	if b == ErrorStorm && invalid+failed > 0 {
		n.recordError(stamp(6), fmt.Sprintf(distinctStormError, idx%100000))
	}
	n.changed = end
	n.gen++
}

// take adds x to *carry and returns its whole part, leaving the rest.
func take(carry *float64, x float64) int64 {
	*carry += x
	whole := math.Floor(*carry + 1e-9)
	*carry -= whole
	return int64(whole)
}

// Import error texts, modelled on real DWH CDA validation errors.
var (
	invalidTexts = []string{
		"error: cvc-id.2: There are multiple occurrences of ID value 'diag-1'.\nerror: cvc-attribute.3: The value 'diag-1' of attribute 'ID' on element 'item' is not valid with respect to its type, 'ID'.\nfatal: XML validation not passed",
		"error: cvc-pattern-valid: Value 'null' is not facet-valid with respect to pattern '[0-9]{1,8}|([0-9]{9,14}|[0-9]{14,14}\\.[0-9]+)([+\\-][0-9]{1,4})?' for type 'ts'.\nerror: cvc-attribute.3: The value 'null' of attribute 'value' on element 'effectiveTime' is not valid with respect to its type, 'ts'.\nerror: dtr1-2-TS: effectiveTime \"null\" is not a valid timestamp.\nfatal: XML validation not passed",
		"error: (Referralto): Element hl7:code[concat(@code,@codeSystem)=doc('include/voc-1.2.276.0.76.11.53-DYNAMIC.xml')//valueSet[1]/conceptList/concept/concat(@code,@codeSystem)][not(@nullFlavor)] ist mandatory [min 1x].\nfatal: XML validation not passed",
		"error: cvc-minLength-valid: Value '' with length = '0' is not facet-valid with respect to minLength '1' for type 'st'.\nerror: cvc-attribute.3: The value '' of attribute 'displayName' on element 'value' is not valid with respect to its type, 'st'.\nfatal: XML validation not passed",
	}
	failedTexts = []string{
		"org.aktin.dwh.import.ImportException: java.sql.SQLException: ERROR: could not serialize access due to concurrent update",
		"org.aktin.dwh.import.ImportException: java.io.IOException: Connection reset by peer",
	}
	recurringStormError = "error: cvc-id.2: There are multiple occurrences of ID value 'diag-1'.\nerror: cvc-attribute.3: The value 'diag-1' of attribute 'ID' on element 'item' is not valid with respect to its type, 'ID'.\nerror: cvc-id.2: There are multiple occurrences of ID value 'diag-1'.\nfatal: XML validation not passed"
	distinctStormError  = "error: cvc-id.2: There are multiple occurrences of ID value '_%d'.\nerror: cvc-attribute.3: The value '_%[1]d' of attribute 'ID' on element 'item' is not valid with respect to its type, 'ID'.\nfatal: XML validation not passed"
)

func (n *node) errorText(failed bool) string {
	n.st.events++
	texts := invalidTexts
	if failed {
		texts = failedTexts
	}
	return texts[mix(n.seed, uint64(n.st.events), 7)%uint64(len(texts))]
}

// recordError adds an error occurrence: the same content counts as a
// repeat (with the latest timestamp), and only the MaxLastErrors most
// recent entries are kept, oldest first.
func (n *node) recordError(at time.Time, content string) {
	st := &n.st
	for i := range st.errors {
		if st.errors[i].content == content {
			st.errors[i].repeats++
			st.errors[i].at = at
			slices.SortStableFunc(st.errors, func(a, b errorEntry) int { return a.at.Compare(b.at) })
			return
		}
	}
	st.errors = append(st.errors, errorEntry{at: at, repeats: 1, content: content})
	slices.SortStableFunc(st.errors, func(a, b errorEntry) int { return a.at.Compare(b.at) })
	if len(st.errors) > MaxLastErrors {
		st.errors = slices.Delete(st.errors, 0, len(st.errors)-MaxLastErrors)
	}
}

// phaseAt returns the phase in force at t and whether the node exists by
// then; n.mu must be held.
func (n *node) phaseAt(t time.Time) (phase, bool) {
	if t.Before(n.phases[0].from) {
		return phase{}, false
	}
	p := n.phases[0]
	for _, q := range n.phases[1:] {
		if q.from.After(t) {
			break
		}
		p = q
	}
	return p, true
}

// contact returns the node's broker entry at t; n.mu must be held.
func (n *node) contact(t time.Time) (broker.Node, bool) {
	p, ok := n.phaseAt(t)
	if !ok {
		return broker.Node{}, false
	}
	last := t.Truncate(time.Minute)
	online := p.b != Offline
	if !online {
		last = p.from
	} else if last.Before(p.from) {
		last = p.from
	}
	last = last.UTC()
	return broker.Node{ID: n.spec.ID, ClientDN: n.spec.clientDN(), LastContact: &last, Websocket: online}, true
}

// importStats converts the state; n.mu must be held.
func (n *node) importStats() *broker.ImportStats {
	st := n.st
	out := &broker.ImportStats{
		Start:    ptr(st.start.UTC()),
		Imported: st.imported, Updated: st.updated, Invalid: st.invalid, Failed: st.failed,
	}
	if !st.lastWrite.IsZero() {
		out.LastWrite = ptr(st.lastWrite.UTC())
	}
	if !st.lastReject.IsZero() {
		out.LastReject = ptr(st.lastReject.UTC())
	}
	for _, e := range st.errors {
		out.Errors = append(out.Errors, broker.ImportError{Timestamp: e.at.UTC(), Repeats: e.repeats, Content: e.content})
	}
	return out
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// mix hashes a seed with values (splitmix64 steps).
func mix(seed uint64, vals ...uint64) uint64 {
	x := seed
	for _, v := range vals {
		x ^= v + 0x9e3779b97f4a7c15 + (x << 6) + (x >> 2)
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		x = z ^ (z >> 31)
	}
	return x
}

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }
