// Package archtest holds no code: its test enforces the import rules of
// the architecture page (which package may import which) over the real
// dependency graph reported by `go list`.
package archtest
