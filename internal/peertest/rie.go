package peertest

import "testing"

// RIEInstall is the command that installs the Lambda runtime interface
// emulator the tests run functions under.
const RIEInstall = "GOBIN=<repo>/.peers/bin go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// RIE returns the path of aws-lambda-rie (see Binary), failing tb with
// the install command when it is missing.
func RIE(tb testing.TB) string {
	tb.Helper()
	p, err := Binary("aws-lambda-rie", RIEInstall)
	if err != nil {
		tb.Fatalf("aws-lambda-rie (the Lambda runtime interface emulator): %v", err)
	}
	return p
}
