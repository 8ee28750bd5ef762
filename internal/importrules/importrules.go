// Package importrules checks the module's package graph against layering
// rules: which packages may talk to the database driver, and which
// layers may not import which. Its test runs the rules over `go list` output
// on every `make test`.
package importrules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Rule forbids the packages matched by Packages, except those matched by
// Except, from importing any of Forbidden. Patterns are import paths; a
// trailing "/..." also matches every subpackage.
type Rule struct {
	Name      string
	Packages  []string
	Except    []string
	Forbidden []string
}

// Violation is one import that breaks a rule.
type Violation struct {
	Rule     string
	Importer string
	Imported string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s imports %s", v.Rule, v.Importer, v.Imported)
}

// Check returns every import in imports (importer -> imported paths) that
// breaks one of rules, sorted by rule, importer and imported path.
func Check(imports map[string][]string, rules []Rule) []Violation {
	var found []Violation
	for _, rule := range rules {
		for importer, imported := range imports {
			if !matchesAny(importer, rule.Packages) || matchesAny(importer, rule.Except) {
				continue
			}
			for _, path := range imported {
				if matchesAny(path, rule.Forbidden) {
					found = append(found, Violation{Rule: rule.Name, Importer: importer, Imported: path})
				}
			}
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i], found[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Importer != b.Importer {
			return a.Importer < b.Importer
		}
		return a.Imported < b.Imported
	})
	return found
}

// Split separates found into the violations listed in pending (known, to be
// fixed) and the new ones; stale lists the pending entries that no longer
// occur, so the list can shrink once the code is fixed.
func Split(found, pending []Violation) (news, stale []Violation) {
	for _, v := range found {
		if !slices.Contains(pending, v) {
			news = append(news, v)
		}
	}
	for _, p := range pending {
		if !slices.Contains(found, p) {
			stale = append(stale, p)
		}
	}
	return news, stale
}

func matchesAny(path string, patterns []string) bool {
	for _, pattern := range patterns {
		if matches(path, pattern) {
			return true
		}
	}
	return false
}

func matches(path, pattern string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}
