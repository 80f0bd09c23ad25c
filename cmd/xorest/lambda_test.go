package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/handlers"
	"github.com/xorest/xorest/internal/peertest"
	"github.com/xorest/xorest/xo/xapisim"
)

func TestParseLambda(t *testing.T) {
	base := map[string]string{"XOREST_XAPI": "https://a, https://b", "XOREST_XAPI_PASSWORD": "pw"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		env      map[string]string
		wantErr  bool
		wantMode deploy.Mode
		wantPw   passwordSource
	}{
		{name: "defaults", env: base, wantMode: deploy.ModeAuto, wantPw: passwordSource{value: "pw"}},
		{name: "stream mode", env: with("XOREST_LAMBDA_MODE", "stream"), wantMode: deploy.ModeStream, wantPw: passwordSource{value: "pw"}},
		{name: "bad mode", env: with("XOREST_LAMBDA_MODE", "v3"), wantErr: true},
		{name: "secret reference", env: with("XOREST_XAPI_PASSWORD", "", "XOREST_XAPI_PASSWORD_SECRET", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
			wantMode: deploy.ModeAuto, wantPw: passwordSource{secret: "arn:aws:secretsmanager:eu-west-1:1:secret:x"}},
		{name: "ssm reference", env: with("XOREST_XAPI_PASSWORD", "", "XOREST_XAPI_PASSWORD_SSM", "/xorest/pw"),
			wantMode: deploy.ModeAuto, wantPw: passwordSource{ssm: "/xorest/pw"}},
		{name: "two passwords", env: with("XOREST_XAPI_PASSWORD_SSM", "/xorest/pw"), wantErr: true},
		{name: "no password", env: with("XOREST_XAPI_PASSWORD", ""), wantErr: true},
		{name: "no pool", env: map[string]string{"XOREST_XAPI_PASSWORD": "pw"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseLambda(envOf(tc.env))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errUsage) {
					t.Errorf("error %v is not a usage error", err)
				}
				return
			}
			if cfg.mode != tc.wantMode || cfg.password != tc.wantPw {
				t.Errorf("mode %q, password %+v; want %q, %+v", cfg.mode, cfg.password, tc.wantMode, tc.wantPw)
			}
			if strings.Join(cfg.xapi, " ") != "https://a https://b" || cfg.xapiUser != "root" || cfg.tokenStore != defaultLambdaTokenStore {
				t.Errorf("xapi %q, user %q, token store %q", cfg.xapi, cfg.xapiUser, cfg.tokenStore)
			}
		})
	}
}

func TestLambdaWaitTimeout(t *testing.T) {
	for _, tc := range []struct {
		mode deploy.Mode
		max  time.Duration
	}{
		{deploy.ModeAuto, 29 * time.Second}, // behind an HTTP API too
		{deploy.ModeV1, 29 * time.Second},
		{deploy.ModeV2, 29 * time.Second},
		{deploy.ModeStream, 15 * time.Minute},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			if got := lambdaWaitTimeout(tc.mode); got <= 0 || got >= tc.max {
				t.Fatalf("wait timeout %v, want in (0, %v)", got, tc.max)
			}
		})
	}
}

// fakeAWS answers Secrets Manager GetSecretValue and SSM GetParameter
// (JSON 1.1 protocol) from fixed maps.
type fakeAWS struct {
	secrets, params map[string]string
}

func (f fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ SecretId, Name string }
	json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	notFound := func(kind string) {
		w.Header().Set("X-Amzn-Errortype", kind)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"`+kind+`","message":"not found"}`)
	}
	switch r.Header.Get("X-Amz-Target") {
	case "secretsmanager.GetSecretValue":
		s, ok := f.secrets[in.SecretId]
		if !ok {
			notFound("ResourceNotFoundException")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": in.SecretId, "SecretString": s})
	case "AmazonSSM.GetParameter":
		s, ok := f.params[in.Name]
		if !ok {
			notFound("ParameterNotFound")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": in.Name, "Type": "SecureString", "Value": s}})
	default:
		http.Error(w, "unexpected target "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
	}
}

func TestLambdaMemoryLimit(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int64
		ok   bool
	}{
		{name: "90% of the function's memory", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, want: 1024 << 20 * 9 / 10, ok: true},
		{name: "GOMEMLIMIT wins", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "GOMEMLIMIT": "500MiB"}},
		{name: "not on Lambda", env: map[string]string{}},
		{name: "garbage", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := lambdaMemoryLimit(envOf(tt.env))
			if got != tt.want || ok != tt.ok {
				t.Errorf("%d %v, want %d %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestPasswordResolve(t *testing.T) {
	srv := httptest.NewServer(fakeAWS{
		secrets: map[string]string{"plain": "pw-plain", "json": `{"username":"root","password":"pw-json"}`, "json-nopw": `{"user":"root"}`},
		params:  map[string]string{"/xorest/pw": "pw-ssm"},
	})
	defer srv.Close()
	awsCfg := func(context.Context) (aws.Config, error) {
		return aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}, nil
	}
	noAWS := func(context.Context) (aws.Config, error) { return aws.Config{}, errors.New("AWS must not be used") }
	tests := []struct {
		name    string
		src     passwordSource
		load    func(context.Context) (aws.Config, error)
		want    string
		wantErr bool
	}{
		{"value", passwordSource{value: "pw"}, noAWS, "pw", false},
		{"plain secret", passwordSource{secret: "plain"}, awsCfg, "pw-plain", false},
		{"JSON secret", passwordSource{secret: "json"}, awsCfg, "pw-json", false},
		{"JSON secret without password", passwordSource{secret: "json-nopw"}, awsCfg, "", true},
		{"missing secret", passwordSource{secret: "nope"}, awsCfg, "", true},
		{"ssm parameter", passwordSource{ssm: "/xorest/pw"}, awsCfg, "pw-ssm", false},
		{"missing parameter", passwordSource{ssm: "/nope"}, awsCfg, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.src.resolve(context.Background(), tc.load)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("resolve = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLambdaCommandOutsideLambda(t *testing.T) {
	err := run(context.Background(), []string{"lambda"}, envOf(map[string]string{"XOREST_XAPI": "https://a", "XOREST_XAPI_PASSWORD": "pw"}), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AWS_LAMBDA_RUNTIME_API") {
		t.Fatalf("xorest lambda outside Lambda: %v", err)
	}
	if err := run(context.Background(), []string{"lambda", "extra"}, envOf(nil), io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("xorest lambda extra: %v, want a usage error", err)
	}
}

// TestLambdaUnderRIE builds xorest as `make lambda` does (for this
// machine's architecture) and runs it under the Lambda runtime interface
// emulator with no command, against the simulated pool, its password read
// from a (fake) SSM endpoint at init.
func TestLambdaUnderRIE(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", boot, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	m := xapisim.Default()
	m.User, m.Password = "root", "s3cret-pw"
	simURL, stopSim, err := xapisim.New(m).Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopSim(context.Background())
	ssm := httptest.NewServer(fakeAWS{params: map[string]string{"/xorest/xapi-password": m.Password}})
	defer ssm.Close()

	// The Lambda service's front for the function's asynchronous
	// self-invocations: it accepts them (202) and invokes the emulated
	// function with their payload, as Lambda's event queue does.
	fn := &emulated{}
	relay := &asyncRelay{t: t, fn: fn}
	lambdaAPI := httptest.NewServer(relay)
	defer lambdaAPI.Close()
	defer relay.wg.Wait()
	f := peertest.StartRIE(t, boot,
		"XOREST_XAPI="+strings.TrimSuffix(simURL, "/"), "XOREST_XAPI_USER=root",
		"XOREST_XAPI_PASSWORD=", "XOREST_XAPI_PASSWORD_SECRET=", "XOREST_XAPI_PASSWORD_SSM=/xorest/xapi-password",
		"XOREST_TOKEN_STORE=file:"+filepath.Join(dir, "tokens.json"), "XOREST_LAMBDA_MODE=auto",
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=",
		"AWS_ENDPOINT_URL_SSM="+ssm.URL, "AWS_ENDPOINT_URL_LAMBDA="+lambdaAPI.URL, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_LAMBDA_FUNCTION_NAME=xorest", "AWS_LAMBDA_FUNCTION_TIMEOUT=60")
	fn.url = f.URL
	started := f.Started

	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("root:"+m.Password))
	tests := []struct {
		name   string
		event  map[string]any
		status int
		check  func(t *testing.T, body string)
	}{
		{"v2 collection with Basic", v2Event("GET", "/rest/v0/vms", "fields=name_label,power_state", basic), 200, func(t *testing.T, body string) {
			var vms []map[string]any
			if err := json.Unmarshal([]byte(body), &vms); err != nil || len(vms) == 0 {
				t.Fatalf("body %q: %v", body, err)
			}
			if _, ok := vms[0]["name_label"]; !ok {
				t.Errorf("first VM %v has no name_label", vms[0])
			}
		}},
		{"v1 collection with Basic", v1Event("GET", "/rest/v0/vms", basic), 200, func(t *testing.T, body string) {
			var hrefs []string
			if err := json.Unmarshal([]byte(body), &hrefs); err != nil || len(hrefs) == 0 || !strings.HasPrefix(hrefs[0], "/rest/v0/vms/") {
				t.Errorf("body %q: %v", body, err)
			}
		}},
		{"v2 without credentials", v2Event("GET", "/rest/v0/vms", "", ""), 401, nil},
		{"v1 without credentials", v1Event("GET", "/rest/v0/vms", ""), 401, nil},
		{"v1 action on no such VM", v1Event("POST", "/rest/v0/vms/00000000-0000-0000-0000-000000000000/actions/start", basic), 404, func(t *testing.T, body string) {
			if !strings.Contains(body, "no such VM") {
				t.Errorf("body %q", body)
			}
		}},
		{"v2 wrong password", v2Event("GET", "/rest/v0/vms", "", "Basic "+base64.StdEncoding.EncodeToString([]byte("root:nope"))), 401, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := fn.invoke(t, tc.event)
			if i == 0 {
				t.Logf("cold start (emulator start to first answer, SSM read and XAPI login included): %v", time.Since(started).Round(time.Millisecond))
			}
			if out.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", out.StatusCode, tc.status, out.Body)
			}
			if tc.check != nil {
				tc.check(t, out.Body)
			}
		})
	}

	t.Run("actions run as asynchronous self-invocations", func(t *testing.T) {
		out := fn.invoke(t, v2Event("GET", "/rest/v0/vms", "fields=id,power_state&filter=power_state:Halted", basic))
		var vms []map[string]any
		if err := json.Unmarshal([]byte(out.Body), &vms); err != nil || len(vms) < 2 {
			t.Fatalf("halted VMs: %s %v", out.Body, err)
		}
		starts := []map[string]any{ // one through each gateway
			v2Event("POST", "/rest/v0/vms/"+vms[0]["id"].(string)+"/actions/start", "", basic),
			v1Event("POST", "/rest/v0/vms/"+vms[1]["id"].(string)+"/actions/start", basic),
		}
		for i, start := range starts {
			out = fn.invoke(t, start)
			if out.StatusCode != http.StatusAccepted || !strings.HasPrefix(out.Body, "/rest/v0/tasks/") {
				t.Fatalf("start: %d %s", out.StatusCode, out.Body)
			}
			task := out.Body
			deadline := time.Now().Add(time.Minute) // a hang, not a timing assertion
			for {
				out = fn.invoke(t, v2Event("GET", task, "fields=status,result", basic))
				if !strings.Contains(out.Body, `"pending"`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("task still pending: %s", out.Body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !strings.Contains(out.Body, `"success"`) {
				t.Fatalf("task: %s", out.Body)
			}
			if n := relay.count(); n != i+1 {
				t.Errorf("%d asynchronous invocations, want %d", n, i+1)
			}
			out = fn.invoke(t, v2Event("GET", "/rest/v0/vms/"+vms[i]["id"].(string), "fields=power_state", basic))
			if !strings.Contains(out.Body, "Running") {
				t.Errorf("VM after the job: %s", out.Body)
			}
		}
	})
}

// invocation is the part of a proxy answer the tests read.
type invocation struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body"`
}

// emulated is the function under the emulator, which runs one
// invocation at a time (a second one at once crashes it).
type emulated struct {
	url string
	mu  sync.Mutex
}

// post sends an event and returns the answer's status and body.
func (e *emulated) post(event []byte) (int, []byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	resp, err := http.Post(e.url, "application/json", bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// invoke sends an event and decodes the proxy answer.
func (e *emulated) invoke(t *testing.T, event map[string]any) invocation {
	t.Helper()
	ev, _ := json.Marshal(event)
	_, raw, err := e.post(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out invocation
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	return out
}

// asyncRelay stands in for the Lambda service's Invoke API for
// InvocationType Event: it accepts the invocation (202) and then invokes
// the emulated function with the payload, once the emulator is free.
type asyncRelay struct {
	t  *testing.T
	fn *emulated
	wg sync.WaitGroup
	mu sync.Mutex
	n  int
}

func (a *asyncRelay) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (a *asyncRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/xorest/invocations" || r.Header.Get("X-Amz-Invocation-Type") != "Event" {
		a.t.Errorf("unexpected Lambda API call %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("X-Amz-Invocation-Type"))
		http.NotFound(w, r)
		return
	}
	payload, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	a.wg.Go(func() {
		for range 100 {
			status, raw, err := a.fn.post(payload)
			if err == nil && status == http.StatusOK {
				if !bytes.Contains(raw, []byte(`"done":true`)) {
					a.t.Errorf("job invocation answered %s", raw)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		a.t.Error("the emulator never ran the job")
	})
}

func v2Event(method, path, query, authorization string) map[string]any {
	h := map[string]string{"host": "abc123.execute-api.eu-west-1.amazonaws.com", "accept": "application/json"}
	if authorization != "" {
		h["authorization"] = authorization
	}
	return map[string]any{"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query, "headers": h,
		"requestContext": map[string]any{"domainName": "abc123.execute-api.eu-west-1.amazonaws.com", "stage": "$default",
			"http": map[string]any{"method": method, "path": path, "sourceIp": "203.0.113.7"}}}
}

func v1Event(method, path, authorization string) map[string]any {
	h := map[string][]string{"Host": {"abc123.execute-api.eu-west-1.amazonaws.com"}, "Authorization": {authorization}}
	return map[string]any{"resource": "/{proxy+}", "path": path, "httpMethod": method, "multiValueHeaders": h,
		"requestContext": map[string]any{"stage": "prod", "httpMethod": method, "identity": map[string]any{"sourceIp": "203.0.113.7"}}}
}

func TestJobBoundsAgree(t *testing.T) {
	if handlers.MaxJob > deploy.MaxJob {
		t.Errorf("handlers dispatches jobs up to %d bytes, deploy accepts %d", handlers.MaxJob, deploy.MaxJob)
	}
}
