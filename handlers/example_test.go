package handlers_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/handlers"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "xorest-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := auth.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		log.Fatal(err)
	}
	h, err := handlers.New(handlers.Config{
		Tokens:      store,
		Collections: []string{"vms", "hosts"},
		// The xo layer logs into XAPI here and accepts pool admins only.
		VerifyBasic: func(ctx context.Context, user, password string) error {
			if user == "root" && password == "secret" {
				return nil
			}
			return handlers.ErrUnauthorized
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	req := httptest.NewRequest("GET", "/rest/v0?fields=id&ndjson", nil)
	req.SetBasicAuth("root", "secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body)

	req = httptest.NewRequest("GET", "/rest/v0", nil) // no credentials
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	fmt.Println(rec.Body)
	// Output:
	// 200 application/x-ndjson
	// {"id":"vms","href":"/rest/v0/vms","url":"/rest/v0/vms"}
	// {"id":"hosts","href":"/rest/v0/hosts","url":"/rest/v0/hosts"}
	// 401 Basic realm="xo"
	// {
	//   "error": "missing credentials"
	// }
}
