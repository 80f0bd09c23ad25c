package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/xorest/xorest/deploy"
)

// A Lambda function that serves an http.Handler: on Lambda, main calls
// Start, which does not return. Here the handler is called directly with
// an HTTP API event, as the runtime would.
func Example() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
	})
	async := deploy.NewLocalAsync(func(ctx context.Context, job []byte) error { return nil }, nil)

	// In main: deploy.Start(ctx, h, mode, async)
	fn, err := deploy.NewHandler(h, deploy.ModeAuto, async)
	if err != nil {
		panic(err)
	}
	out, err := fn(context.Background(), []byte(`{"version":"2.0","rawPath":"/rest/v0/vms",
		"requestContext":{"domainName":"abc.execute-api.eu-west-1.amazonaws.com","http":{"method":"GET"}}}`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", out)
	// Output:
	// {StatusCode:200 Headers:map[Content-Type:application/json] MultiValueHeaders:map[] Body:{"path":"/rest/v0/vms"} IsBase64Encoded:false Cookies:[]}
}
