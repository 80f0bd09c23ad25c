// Command lambdafloor is the floor of xorest's Lambda cold start in
// `make bench`: the smallest aws-lambda-go function, answering every event
// with an API Gateway-shaped 200. It is built like `make lambda` builds
// xorest (CGO_ENABLED=0, -tags lambda.norpc, -trimpath, -ldflags=-s -w) and
// run under the same runtime interface emulator, so the difference between
// the two is what xorest's own initialisation and first answer cost.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

// response is the API Gateway proxy answer both event versions accept.
type response struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body"`
}

func main() {
	lambda.Start(func(context.Context, json.RawMessage) (response, error) {
		return response{StatusCode: 200, Body: "hello"}, nil
	})
}
