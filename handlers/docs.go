package handlers

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// docsAssets are the documentation page: a template with the stylesheet and
// the renderer script, all inlined into one answer so that the page needs no
// further request (every route requires authentication) and no network.
//
//go:embed docs/page.html docs/page.css docs/page.js
var docsAssets embed.FS

// wildcardRE matches the wildcards of a ServeMux pattern: {name}, {name...}, {$}.
var wildcardRE = regexp.MustCompile(`\{([^}]*)\}`)

// openAPIPath turns a ServeMux path pattern into an OpenAPI path and the
// names of its path parameters.
func openAPIPath(pattern string) (string, []string) {
	var names []string
	path := wildcardRE.ReplaceAllStringFunc(pattern, func(w string) string {
		name := strings.TrimSuffix(w[1:len(w)-1], "...")
		if name == "$" {
			return ""
		}
		names = append(names, name)
		return "{" + name + "}"
	})
	return path, names
}

// errorResponse documents an error answer.
func errorResponse(description string) map[string]any {
	return map[string]any{
		"description": description,
		"content": map[string]any{"application/json": map[string]any{
			"schema": map[string]any{"$ref": "#/components/schemas/Error"},
		}},
	}
}

// openAPI generates the OpenAPI 3 document of the route table.
func (s *server) openAPI() ([]byte, error) {
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		path, names := openAPIPath(rt.pattern)
		var params []any
		for _, n := range names {
			params = append(params, map[string]any{"name": n, "in": "path", "required": true, "schema": stringSchema})
		}
		for _, n := range rt.params {
			spec := paramSpecs[n]
			params = append(params, map[string]any{
				"name": n, "in": "query", "required": false,
				"description": spec.description, "schema": spec.schema, "allowEmptyValue": true,
			})
		}
		status := rt.resp.status
		if status == 0 {
			status = http.StatusOK
		}
		types := rt.resp.types
		if types == nil {
			types = []string{"application/json"}
		}
		content := map[string]any{}
		for _, t := range types {
			mt := map[string]any{}
			if rt.resp.schema != nil && strings.Contains(t, "json") {
				mt["schema"] = rt.resp.schema
			} else {
				mt["schema"] = stringSchema
			}
			content[t] = mt
		}
		responses := map[string]any{
			fmt.Sprint(status): map[string]any{"description": rt.resp.description, "content": content},
			"400":              errorResponse("Bad request (for example a filter that does not parse, or two authentication methods)"),
			"401":              errorResponse("Missing or invalid credentials"),
			"default":          errorResponse("Error"),
		}
		if len(rt.params) > 0 || rt.body.schema != nil {
			responses["422"] = errorResponse("Invalid parameters")
		}
		op := map[string]any{
			"operationId": operationID(rt.method, path),
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
			"responses":   responses,
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body.schema != nil {
			op["requestBody"] = map[string]any{
				"required": false,
				"content":  map[string]any{"application/json": map[string]any{"schema": rt.body.schema}},
			}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		m := strings.ToLower(rt.method)
		if _, dup := paths[path][m]; dup {
			return nil, fmt.Errorf("handlers: two routes for %s %s", rt.method, path)
		}
		paths[path][m] = op
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "xorest: Xen Orchestra REST API v0",
			"version":     "0",
			"description": "The Xen Orchestra REST API served straight from XAPI. Every route requires authentication: a token (cookie authenticationToken or Authorization: Bearer) or HTTP Basic with the credentials of a pool admin.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"basic":  map[string]any{"type": "http", "scheme": "basic"},
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": tokenCookie},
			},
			"schemas": map[string]any{
				"Error": map[string]any{
					"type":     "object",
					"required": []string{"error"},
					"properties": map[string]any{
						"error": map[string]any{"type": "string"},
						"data":  map[string]any{"type": "object"},
						"info":  map[string]any{"type": "string"},
					},
				},
			},
		},
		"security": []any{
			map[string]any{"basic": []string{}},
			map[string]any{"bearer": []string{}},
			map[string]any{"cookie": []string{}},
		},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("handlers: encoding the OpenAPI document: %w", err)
	}
	return data, nil
}

// operationID names an operation after its method and path:
// GET /rest/v0/vms/{id} is "get_vms_id".
func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.TrimPrefix(path, BasePath), "/") {
		seg = strings.Trim(seg, "{}")
		if seg == "" {
			continue
		}
		b.WriteByte('_')
		for _, c := range seg {
			if c == '-' || c == '.' {
				c = '_'
			}
			b.WriteRune(c)
		}
	}
	return b.String()
}

// docs are the OpenAPI document and the documentation page.
type docs struct {
	spec []byte // the OpenAPI document, generated from the routes
	page []byte // the documentation page
	csp  string // the page's Content-Security-Policy
}

// buildDocs builds the documents (server.docs, once).
func (s *server) buildDocs() (*docs, error) {
	spec, err := s.openAPI()
	if err != nil {
		return nil, err
	}
	page, csp, err := buildDocsPage(spec)
	if err != nil {
		return nil, err
	}
	return &docs{spec: spec, page: page, csp: csp}, nil
}

// docsSpec answers GET /rest/v0/docs/swagger.json.
func (s *server) docsSpec(w http.ResponseWriter, r *http.Request) error {
	d, err := s.docs()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentJSON)
	_, err = w.Write(d.spec)
	return err
}

// docsPage answers GET /rest/v0/docs: an HTML page that renders the
// OpenAPI document, with everything inlined and a Content-Security-Policy
// that allows no other source.
func (s *server) docsPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.docs()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", d.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, err = w.Write(d.page)
	return err
}

// buildDocsPage assembles the documentation page of the OpenAPI document
// spec and its CSP.
func buildDocsPage(spec []byte) (page []byte, csp string, err error) {
	read := func(name string) ([]byte, error) {
		data, err := docsAssets.ReadFile("docs/" + name)
		if err != nil {
			return nil, fmt.Errorf("handlers: docs asset %s: %w", name, err)
		}
		return data, nil
	}
	tmpl, err := read("page.html")
	if err != nil {
		return nil, "", err
	}
	css, err := read("page.css")
	if err != nil {
		return nil, "", err
	}
	js, err := read("page.js")
	if err != nil {
		return nil, "", err
	}
	// Compact the document and escape <, > and & (json.Compact keeps them),
	// so it cannot close its script element.
	var compact bytes.Buffer
	if err := json.Compact(&compact, spec); err != nil {
		return nil, "", fmt.Errorf("handlers: compacting the OpenAPI document: %w", err)
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	page = bytes.Replace(tmpl, []byte("{{STYLE}}"), css, 1)
	page = bytes.Replace(page, []byte("{{SCRIPT}}"), js, 1)
	page = bytes.Replace(page, []byte("{{SPEC}}"), escaped.Bytes(), 1)
	csp = "default-src 'none'; script-src " + cspHash(js) + "; style-src " + cspHash(css) +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return page, csp, nil
}

// cspHash is the CSP source of an inline element with that content.
func cspHash(content []byte) string {
	sum := sha256.Sum256(content)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
