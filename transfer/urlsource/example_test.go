package urlsource_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/xorest/xorest/transfer/urlsource"
)

// Example pulls an object from a presigned-style URL, as an import does
// before piping it into XAPI. The server runs on loopback, which must be
// allowed explicitly (XOREST_IMPORT_ALLOW); without it the URL is refused.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"d41d8cd9"`)
		http.ServeContent(w, r, "disk.raw", time.Time{}, strings.NewReader("sixteen bytes!!\n"))
	}))
	defer srv.Close()
	url := srv.URL + "/bucket/disk.raw?X-Amz-Signature=0123abcd"

	_, err := urlsource.Open(context.Background(), url, urlsource.Options{})
	fmt.Println("default policy refuses loopback:", errors.Is(err, urlsource.ErrForbiddenAddress))

	r, err := urlsource.Open(context.Background(), url, urlsource.Options{
		Allow: strings.Split("127.0.0.1, minio.internal", ","),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println("size:", r.Size())
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil { // XAPI's PUT body in real use
		log.Fatal(err)
	}
	fmt.Printf("read %d bytes, sha256 %x…\n", r.BytesRead(), h.Sum(nil)[:4])
	fmt.Println("for logs:", strings.TrimPrefix(urlsource.Redact(url), srv.URL))
	// Output:
	// default policy refuses loopback: true
	// size: 16
	// read 16 bytes, sha256 ce028330…
	// for logs: /bucket/disk.raw
}
