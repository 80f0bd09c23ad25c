package deploy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/internal/peertest"
)

var (
	bootstrapOnce sync.Once
	bootstrapPath string
	bootstrapErr  error
)

// buildBootstrap builds deploy/internal/rietest as a Lambda bootstrap,
// with the flags `make lambda` uses, for this machine's architecture.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	bootstrapOnce.Do(func() {
		dir, err := os.MkdirTemp("", "xorest-rietest-")
		if err != nil {
			bootstrapErr = err
			return
		}
		bootstrapPath = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrapPath, "./internal/rietest")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			bootstrapErr = errors.New("go build ./internal/rietest: " + err.Error() + "\n" + string(out))
		}
	})
	if bootstrapErr != nil {
		t.Fatal(bootstrapErr)
	}
	return bootstrapPath
}

// rie is one emulator running the test bootstrap.
type rie struct {
	*peertest.RIEFunction
	jobs string // file the bootstrap appends jobs to
}

// startRIE runs the emulator with the bootstrap in the given mode, on
// loopback ports, and stops it (and the bootstrap) at the end of the test.
func startRIE(t *testing.T, mode deploy.Mode) *rie {
	t.Helper()
	jobs := filepath.Join(t.TempDir(), "jobs")
	f := peertest.StartRIE(t, buildBootstrap(t),
		"XOREST_LAMBDA_MODE="+string(mode), "RIETEST_JOBS="+jobs,
		"AWS_LAMBDA_FUNCTION_NAME=xorest-rietest", "AWS_LAMBDA_FUNCTION_TIMEOUT=60")
	return &rie{RIEFunction: f, jobs: jobs}
}

// invoke sends one event and returns the raw answer. Invokes must not
// overlap: the emulator's classic mode crashes on concurrent ones.
func (r *rie) invoke(t *testing.T, event []byte) []byte {
	t.Helper()
	resp, err := http.Post(r.URL, "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: status %d: %s", resp.StatusCode, b)
	}
	return b
}

// TestRIE runs the test bootstrap under the real Lambda runtime interface
// emulator, in each mode, with every fixture that mode accepts, and a job
// event.
func TestRIE(t *testing.T) {
	for _, mode := range []deploy.Mode{deploy.ModeAuto, deploy.ModeV1, deploy.ModeV2, deploy.ModeStream} {
		t.Run(string(mode), func(t *testing.T) {
			r := startRIE(t, mode)
			first := true
			for _, tc := range eventCases {
				if !contains(modeStrings(tc.modes), string(mode)) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					raw := r.invoke(t, fixture(t, tc.fixture))
					if first {
						first = false
						t.Logf("cold start (emulator start to first answer): %v", time.Since(r.Started).Round(time.Millisecond))
					}
					tc.want.verify(t, decodeAnswer(t, raw))
				})
			}
			t.Run("async job", func(t *testing.T) {
				job := []byte("export vm1 to s3://bucket/key")
				ev, _ := json.Marshal(map[string]string{"xorestAsyncJob": base64.StdEncoding.EncodeToString(job)})
				if got := string(r.invoke(t, ev)); got != `{"done":true}` {
					t.Fatalf("job answer %s", got)
				}
				b, err := os.ReadFile(r.jobs)
				if err != nil || strings.TrimSpace(string(b)) != string(job) {
					t.Fatalf("jobs run: %q, %v", b, err)
				}
			})
		})
	}
}

func modeStrings(ms []deploy.Mode) []string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return s
}
