package nodehealth

import (
	"regexp"
	"strconv"
	"strings"
)

// Versions are compared here rather than with github.com/hashicorp/go-version
// because that module is not a requirement of this module's go.mod; this
// covers the PEP 440 forms the seed's packaging.version compared (release
// segments, a/b/rc pre-releases, post and dev releases; no epochs).

// pep440 matches the public part of a PEP 440 version (normalised forms and
// the usual spellings: "1.5.1", "v1.5", "1.5.1rc1", "1.5.1-rc.1",
// "1.5.1.post2", "1.5.1-2", "1.6.0.dev3", "1.5.1+local").
var pep440 = regexp.MustCompile(`^v?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d*))?` +
	`(?:[-_.]?(dev)[-_.]?(\d*))?` +
	`(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$`)

// pepVersion is a parsed PEP 440 version (epochs are not supported; local
// parts are ignored).
type pepVersion struct {
	release []int
	// pre is the pre-release phase: 0 none, 1 a, 2 b, 3 rc.
	preKind, preNum int
	hasPost         bool
	postNum         int
	hasDev          bool
	devNum          int
}

// parseVersion parses v case-insensitively; ok is false when v is not a
// PEP 440 version.
func parseVersion(v string) (pepVersion, bool) {
	m := pep440.FindStringSubmatch(strings.ToLower(strings.TrimSpace(v)))
	if m == nil {
		return pepVersion{}, false
	}
	var p pepVersion
	for _, part := range strings.Split(m[1], ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return pepVersion{}, false
		}
		p.release = append(p.release, n)
	}
	switch m[2] {
	case "a", "alpha":
		p.preKind = 1
	case "b", "beta":
		p.preKind = 2
	case "c", "rc", "pre", "preview":
		p.preKind = 3
	}
	p.preNum = atoi(m[3])
	switch {
	case m[4] != "":
		p.hasPost, p.postNum = true, atoi(m[4])
	case m[5] != "":
		p.hasPost, p.postNum = true, atoi(m[6])
	}
	if m[7] != "" {
		p.hasDev, p.devNum = true, atoi(m[8])
	}
	return p, true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// compare returns −1, 0 or +1 as p is older than, equal to or newer than q.
func (p pepVersion) compare(q pepVersion) int {
	for i := 0; i < max(len(p.release), len(q.release)); i++ {
		a, b := seg(p.release, i), seg(q.release, i)
		if a != b {
			return sign(a - b)
		}
	}
	if c := cmpKeys(p.preKey(), q.preKey()); c != 0 {
		return c
	}
	if c := cmpKeys(p.postKey(), q.postKey()); c != 0 {
		return c
	}
	return cmpKeys(p.devKey(), q.devKey())
}

// preKey orders the pre-release part: a dev release of a plain release
// ("1.0.dev1") sorts before its pre-releases, a release without
// pre-release after them.
func (p pepVersion) preKey() [2]int {
	switch {
	case p.preKind != 0:
		return [2]int{p.preKind, p.preNum}
	case p.hasDev && !p.hasPost:
		return [2]int{-1, 0}
	default:
		return [2]int{9, 0}
	}
}

func (p pepVersion) postKey() [2]int {
	if !p.hasPost {
		return [2]int{-1, 0}
	}
	return [2]int{0, p.postNum}
}

func (p pepVersion) devKey() [2]int {
	if !p.hasDev {
		return [2]int{1, 0}
	}
	return [2]int{0, p.devNum}
}

func cmpKeys(a, b [2]int) int {
	if a[0] != b[0] {
		return sign(a[0] - b[0])
	}
	return sign(a[1] - b[1])
}

func seg(r []int, i int) int {
	if i < len(r) {
		return r[i]
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
