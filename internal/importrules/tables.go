package importrules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// createTable finds the tables a migration creates.
var createTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)

// writeStatement finds the table a SQL write names. "DO UPDATE SET" and
// "FOR UPDATE SKIP LOCKED" name no table and are ignored, as the word
// after UPDATE is then not a table.
var writeStatement = regexp.MustCompile(`(?i)\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+([a-z_][a-z0-9_]*)`)

// Tables returns the tables created by the up sections of migrations
// (goose SQL files), sorted.
func Tables(migrations []string) []string {
	var tables []string
	for _, m := range migrations {
		up, _, _ := strings.Cut(m, "-- +goose Down")
		for _, match := range createTable.FindAllStringSubmatch(up, -1) {
			if name := strings.ToLower(match[1]); !slices.Contains(tables, name) {
				tables = append(tables, name)
			}
		}
	}
	sort.Strings(tables)
	return tables
}

// WrittenTables returns the tables among tables that a Go source file's
// string literals insert into, update, delete from or truncate. Only
// literals count, so a comment naming a statement does not; a statement
// whose table name is not a literal (built at run time) is not seen.
func WrittenTables(src []byte, tables []string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var written []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		text, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		for _, match := range writeStatement.FindAllStringSubmatch(text, -1) {
			name := strings.ToLower(match[1])
			if slices.Contains(tables, name) && !slices.Contains(written, name) {
				written = append(written, name)
			}
		}
		return true
	})
	sort.Strings(written)
	return written, nil
}
