package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"
)

// The OpenAPI document is kept in fragments, one per area of the API
// (openapi/*.json), merged in file-name order: the first holds the document's
// info, later ones add paths and components. A test keeps the merged document
// and the router in agreement, in both directions.
//
//go:embed openapi/*.json
var openAPIFragments embed.FS

// OpenAPIDocument is the merged OpenAPI 3 description of every route.
var OpenAPIDocument = mustMergeOpenAPI(openAPIFragments)

// openAPI serves OpenAPIDocument.
func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", OpenAPIDocument)
}

func mustMergeOpenAPI(fsys fs.FS) []byte {
	doc, err := mergeOpenAPI(fsys)
	if err != nil {
		panic(err)
	}
	return doc
}

func mergeOpenAPI(fsys fs.FS) ([]byte, error) {
	names, err := fs.Glob(fsys, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var doc map[string]any
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := json.Unmarshal(raw, &frag); err != nil {
			return nil, fmt.Errorf("openapi fragment %s: %w", name, err)
		}
		if doc == nil {
			doc = frag
			continue
		}
		if err := mergeInto(doc, frag, name); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// mergeInto adds frag's maps into dst; a key defined twice is an error, so
// two fragments can never silently overwrite each other.
func mergeInto(dst, frag map[string]any, where string) error {
	for k, v := range frag {
		existing, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		em, ok1 := existing.(map[string]any)
		vm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			if k == "tags" {
				if ea, ok := existing.([]any); ok {
					if va, ok := v.([]any); ok {
						dst[k] = append(ea, va...)
						continue
					}
				}
			}
			return fmt.Errorf("openapi fragment %s: %q is defined twice", where, k)
		}
		if err := mergeInto(em, vm, where); err != nil {
			return err
		}
	}
	return nil
}
