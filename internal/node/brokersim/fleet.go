package brokersim

import (
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/vigil-health/vigil/internal/node/broker"
)

// DWH releases the simulated nodes run. Configure the monitor's current
// release as CurrentDWHVersion: healthy nodes report "dwh-j2ee-1.6",
// VersionDrift nodes "dwh-j2ee-1.5.1rc1".
const (
	CurrentDWHVersion  = "1.6"
	OutdatedDWHVersion = "1.5.1rc1"
)

// ubuntuPackages lists, for each package resource, its packages with the
// version on Ubuntu 22.04 (jammy) and the one on Ubuntu 20.04 (focal).
var ubuntuPackages = map[string][]struct{ name, jammy, focal string }{
	broker.ResourceRScript: {
		{"r-base-core", "4.1.2-1ubuntu2", "3.6.3-2"},
		{"r-cran-lattice", "0.20-45-1", "0.20-40-1"},
		{"r-cran-tidyverse", "1.3.1-1", "1.3.0-1"},
	},
	broker.ResourcePython: {
		{"python3", "3.10.6-1~22.04", "3.8.2-0ubuntu2"},
		{"python3-numpy", "1:1.21.5-1ubuntu22.04.1", "1:1.17.4-5ubuntu3"},
		{"python3-pandas", "1.3.5+dfsg-3", "0.25.3+dfsg-7"},
	},
}

// resourceProps returns resource name of n (a broker.Resources name) with
// the DWH outdated or not, and whether the node publishes it.
func resourceProps(n *node, outdated bool, name string) ([]broker.Property, bool) {
	if slices.Contains(n.spec.Omit, name) {
		return nil, false
	}
	pick := func(salt uint64, opts ...string) string { return opts[mix(n.seed, salt)%uint64(len(opts))] }
	jammy := mix(n.seed, 100)%3 != 0
	var props []broker.Property
	add := func(k, v string) { props = append(props, broker.Property{Key: k, Value: v}) }
	switch name {
	case broker.ResourceVersions:
		dwh, api, j2ee := CurrentDWHVersion, "0.10", "22.0.1.Final"
		if outdated {
			dwh, api, j2ee = OutdatedDWHVersion, "0.9", "18.0.0.Final"
		}
		add("dwh-api", api)
		add("dwh-j2ee", "dwh-j2ee-"+dwh)
		add("j2ee-impl", j2ee)
		if jammy {
			add("apache2", pick(101, "2.4.52-1ubuntu4.7", "2.4.52-1ubuntu4.9"))
			add("java", pick(102, "Ubuntu/11.0.21", "Ubuntu/11.0.22", "Private Build/11.0.20.1"))
			add("os", "Ubuntu 22.04.3 LTS")
			add("postgres", pick(103, "14.10-0ubuntu0.22.04.1", "14.11-0ubuntu0.22.04.1"))
			if mix(n.seed, 104)%5 != 0 { // some nodes do not report their kernel
				add("kernel", pick(105, "5.15.0-91-generic", "5.15.0-97-generic"))
			}
		} else {
			add("apache2", "2.4.41-4ubuntu3.15")
			add("java", "Ubuntu/11.0.20.1")
			add("os", "Ubuntu 20.04.6 LTS")
			add("postgres", "12.17-0ubuntu0.20.04.1")
			add("kernel", "5.4.0-169-generic")
		}
	case broker.ResourceRScript, broker.ResourcePython:
		for _, pkg := range ubuntuPackages[name] {
			if jammy {
				add(pkg.name, pkg.jammy)
			} else {
				add(pkg.name, pkg.focal)
			}
		}
	case broker.ResourceImportScripts:
		if outdated {
			add("p21", "1.5")
		} else {
			add("p21", "1.6")
		}
	default:
		return nil, false
	}
	slices.SortFunc(props, func(a, b broker.Property) int { return strings.Compare(a.Key, b.Key) })
	return props, true
}

// DemoFleet returns twelve named nodes, ids "1" to "12", covering every
// behaviour relative to now: five healthy nodes (one without python and
// R resources), one offline for four days and one since yesterday, one
// without imports for five days, an error storm since two days, a DWH
// restart yesterday, an outdated DWH and a node appearing in 30 minutes.
func DemoFleet(now time.Time) []NodeSpec {
	day := 24 * time.Hour
	return []NodeSpec{
		{ID: "1", Name: "Universitätsklinikum Nordstadt", Behaviour: Healthy, ImportsPerHour: 14},
		{ID: "2", Name: "Klinikum Am Hafen", Behaviour: Healthy, ImportsPerHour: 9},
		{ID: "3", Name: "St. Marien-Hospital Talheim", Behaviour: Healthy, ImportsPerHour: 6},
		{ID: "4", Name: "Kreiskrankenhaus Bergfeld", Behaviour: Healthy, ImportsPerHour: 5, Omit: []string{broker.ResourcePython, broker.ResourceRScript}},
		{ID: "5", Name: "Evangelisches Krankenhaus Lindenau", Behaviour: Offline, At: now.Add(-4 * day), ImportsPerHour: 7},
		{ID: "6", Name: "Klinikum Westend", Behaviour: Offline, At: now.Add(-1 * day), ImportsPerHour: 8},
		{ID: "7", Name: "Städtisches Klinikum Ostheim", Behaviour: NoImports, At: now.Add(-5 * day), ImportsPerHour: 10},
		{ID: "8", Name: "Marienkrankenhaus Seeburg", Behaviour: ErrorStorm, At: now.Add(-2 * day), ImportsPerHour: 8},
		{ID: "9", Name: "Klinikum Südring", Behaviour: DWHRestart, At: now.Add(-1 * day), ImportsPerHour: 9},
		{ID: "10", Name: "Helios-Klinik Waldrand", Behaviour: VersionDrift, ImportsPerHour: 7},
		{ID: "11", Name: "Universitätsmedizin Flussau", Behaviour: Healthy, ImportsPerHour: 20},
		{ID: "12", Name: "Neues Klinikum Auental", Behaviour: AppearsAt, At: now.Add(30 * time.Minute), ImportsPerHour: 6},
	}
}

// AddDemoFleet adds DemoFleet(s.Now()) and returns the specs added.
func (s *Simulator) AddDemoFleet() ([]NodeSpec, error) {
	specs := DemoFleet(s.Now())
	for i, spec := range specs {
		added, err := s.AddNode(spec)
		if err != nil {
			return specs[:i], err
		}
		specs[i] = added
	}
	return specs, nil
}

// AddFleet adds n nodes with ids after the highest numeric id, a mix of
// behaviours drawn from seed (about 72 % healthy, 6 % offline, 6 % no
// imports, 5 % error storms, 4 % DWH restarts, 5 % outdated, 2 % appearing
// within two days) and 5 to 20 imports an hour. It returns the specs
// added; the same seed and clock give the same fleet.
func (s *Simulator) AddFleet(n int, seed int64) ([]NodeSpec, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x5851f42d4c957f2d))
	now := s.Now()
	within := func(d time.Duration) time.Duration {
		return time.Duration(rng.Int64N(int64(d)/int64(time.Minute))) * time.Minute
	}
	day := 24 * time.Hour
	out := make([]NodeSpec, 0, n)
	for range n {
		spec := NodeSpec{ImportsPerHour: 5 + rng.IntN(16)}
		switch r := rng.IntN(100); {
		case r < 72:
			spec.Behaviour = Healthy
		case r < 78:
			spec.Behaviour, spec.At = Offline, now.Add(-within(6*day))
		case r < 84:
			spec.Behaviour, spec.At = NoImports, now.Add(-within(6*day))
		case r < 89:
			spec.Behaviour, spec.At = ErrorStorm, now.Add(-within(3*day))
		case r < 93:
			spec.Behaviour, spec.At = DWHRestart, now.Add(within(4*day)-2*day)
		case r < 98:
			spec.Behaviour = VersionDrift
			if rng.IntN(3) == 0 {
				spec.At = now.Add(within(3 * day))
			}
		default:
			spec.Behaviour, spec.At = AppearsAt, now.Add(within(2*day))
		}
		added, err := s.AddNode(spec)
		if err != nil {
			return out, err
		}
		out = append(out, added)
	}
	return out, nil
}
