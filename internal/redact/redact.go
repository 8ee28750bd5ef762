// Package redact keeps secrets out of logs, JSON dumps and %v output while
// still showing whether a secret is set.
package redact

// Mark is what stands in for a secret that is set.
const Mark = "[REDACTED]"

// Secret returns Mark for a set secret and `""` for an empty one.
func Secret(secret string) string {
	if secret == "" {
		return `""`
	}
	return Mark
}
