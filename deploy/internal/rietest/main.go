// Command rietest is the bootstrap that the deploy tests run under the
// Lambda runtime interface emulator: the test handler served through
// deploy.Start in the mode named by XOREST_LAMBDA_MODE. Async jobs are
// appended to the file named by RIETEST_JOBS, one per line.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/deploy/internal/testhandler"
)

func main() {
	mode, err := deploy.ParseMode(os.Getenv("XOREST_LAMBDA_MODE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	jobs := os.Getenv("RIETEST_JOBS")
	async := deploy.NewLocalAsync(func(ctx context.Context, job []byte) error {
		if string(job) == "fail" {
			return fmt.Errorf("job asked to fail")
		}
		f, err := os.OpenFile(jobs, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = fmt.Fprintf(f, "%s\n", job)
		return err
	}, nil)
	err = deploy.Start(context.Background(), testhandler.New(), mode, async)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
