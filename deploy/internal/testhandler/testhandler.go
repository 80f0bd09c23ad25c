// Package testhandler is the fixed http.Handler that the deploy tests
// serve through every Lambda adapter, in process and under the Lambda
// runtime interface emulator. It imitates the shapes of /rest/v0 answers
// (a collection, an action, an error, a stream) and echoes what it
// received, so that a test can check both directions of each adapter.
package testhandler

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// New returns the test handler.
//
//	GET  /rest/v0/vms[?limit=N]               a JSON collection of hrefs
//	POST /rest/v0/vms/{id}/actions/{action}   202, Location and the JSON body echoed; 400 on bad JSON
//	GET  /rest/v0/echo                        what the handler saw, two Set-Cookie and a repeated header
//	GET  /rest/v0/stream?n=N                  N NDJSON lines, flushed one by one
//	GET  /rest/v0/big?bytes=N                 N bytes of 'x'
//	anything else                             404 {"error": ...}
func New() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rest/v0/vms", func(w http.ResponseWriter, r *http.Request) {
		limit := 3
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid limit", "data": map[string]any{"limit": s}})
				return
			}
			limit = min(n, limit)
		}
		items := []string{}
		for i := range limit {
			items = append(items, fmt.Sprintf("/rest/v0/vms/vm%d", i))
		}
		writeJSON(w, http.StatusOK, items)
	})
	mux.HandleFunc("POST /rest/v0/vms/{id}/actions/{action}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid JSON body", "data": map[string]any{"reason": err.Error()}})
			return
		}
		task := "/rest/v0/tasks/" + r.PathValue("action") + "-" + r.PathValue("id")
		w.Header().Set("Location", task)
		writeJSON(w, http.StatusAccepted, map[string]any{"task": task, "body": body})
	})
	mux.HandleFunc("GET /rest/v0/echo", func(w http.ResponseWriter, r *http.Request) {
		token := ""
		if c, err := r.Cookie("authenticationToken"); err == nil {
			token = c.Value
		}
		http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
		http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		writeJSON(w, http.StatusOK, map[string]any{
			"method": r.Method, "host": r.Host, "path": r.URL.Path,
			"query": r.URL.Query(), "token": token, "trace": r.Header.Get("X-Trace"),
		})
	})
	mux.HandleFunc("GET /rest/v0/stream", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid n"})
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		f, _ := w.(http.Flusher)
		for i := range n {
			fmt.Fprintf(w, "{\"line\":%d}\n", i)
			if f != nil {
				f.Flush()
			}
		}
	})
	mux.HandleFunc("GET /rest/v0/big", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("bytes"))
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid bytes"})
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		chunk := []byte(strings.Repeat("x", 64<<10))
		for n > 0 {
			m := min(n, len(chunk))
			if _, err := w.Write(chunk[:m]); err != nil {
				return
			}
			n -= m
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "no such route", "data": map[string]any{"path": r.URL.Path}})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	io.WriteString(w, string(b)+"\n")
}
