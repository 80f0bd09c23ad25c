// Command xorest serves the Xen Orchestra REST API (/rest/v0) in front of
// one or more XAPI pools, and manages its authentication tokens.
//
//	xorest serve --listen ADDR --xapi URL [--xapi URL ...] --xapi-user U
//	xorest token create|list|revoke
//
// Every flag can also be given as an environment variable XOREST_<FLAG>
// (upper case, dashes as underscores); a flag on the command line wins.
// The XAPI password is read from XOREST_XAPI_PASSWORD only, so that it
// never shows in a process listing.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// A cold load decodes ~150 MB of XAPI records for a 10,000-VM pool:
		// at 200 the collector runs half as often there (xorest's CPU for
		// the first request −0.4 s, +18 MiB peak). On Lambda the memory
		// limit (lambdaMemoryLimit) still bounds the heap.
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xorest:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `usage:
  xorest serve [--listen ADDR] [--xapi URL ...] [--xapi-user USER] [flags]
  xorest token create [--user USER] [--description TEXT] [--expires-in DURATION] [--client-id ID]
  xorest token list
  xorest token revoke ID

Run "xorest serve --help" or "xorest token --help" for the flags.`

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage error")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 && getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		args = []string{"lambda"} // the Lambda bootstrap runs without arguments
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "lambda":
		return lambdaCommand(ctx, args[1:], getenv, stdout, stderr)
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return token(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
}
