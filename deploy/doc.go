// Package deploy runs any http.Handler as an AWS Lambda function, and
// runs work that outlives a request in the background.
//
// Three event sources are served, as Mode says:
//
//   - API Gateway REST APIs (ModeV1, payload 1.0) and HTTP APIs (ModeV2,
//     payload 2.0) through aws-lambda-go-api-proxy's httpadapter. These
//     answers are buffered: at most 6 MB, and an HTTP API gives up after
//     30 s, so long waits must fall back to a task.
//   - Function URLs with InvokeMode RESPONSE_STREAM (ModeStream) through
//     aws-lambda-go's lambdaurl: the body reaches the client as the
//     handler writes it (watch streams, NDJSON), up to 200 MB and 15
//     minutes. Status and headers are sent at the first Write, WriteHeader
//     or Flush and cannot change afterwards, so a handler validates its
//     request before it writes anything.
//   - ModeAuto, the default, tells these events apart, so that one
//     function can sit behind an HTTP API and a streaming Function URL.
//
// Request bodies arrive whole inside the event (6 MB at most), so large
// uploads are pulled from a URL rather than posted.
//
// Async runs jobs after their request was answered: in the standalone
// binary in a goroutine (NewLocalAsync), on Lambda as an asynchronous
// invocation of the function itself (NewLambdaAsync), which the handler
// built by NewHandler recognises and runs. A job's state lives in its
// XAPI task, so any instance can report on it.
//
// The package holds no business logic and never imports the handlers: the
// command (cmd/xorest) builds the http.Handler and the job runner and
// hands them over. Build Lambda binaries with -tags lambda.norpc for the
// provided.al2023 runtime.
package deploy
