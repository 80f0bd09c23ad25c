package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/handlers"
	"github.com/xorest/xorest/xo"
	"github.com/xorest/xorest/xo/xapi"
)

// lambdaConfig is what `xorest lambda` runs with. It comes from the
// environment only (the function's configuration):
//
//	XOREST_XAPI                  pool master URLs, comma-separated (required)
//	XOREST_XAPI_USER             XAPI user (default root)
//	XOREST_XAPI_PASSWORD         its password, or one reference to it:
//	XOREST_XAPI_PASSWORD_SECRET  a Secrets Manager secret (ARN or name); a JSON
//	                             secret gives its "password" field
//	XOREST_XAPI_PASSWORD_SSM     an SSM parameter name (SecureString decrypted)
//	XOREST_XAPI_CA_FILE, XOREST_XAPI_FINGERPRINT, XOREST_XAPI_INSECURE,
//	XOREST_XAPI_HOST_URL         as for serve
//	XOREST_TOKEN_STORE           default file:/tmp/xorest/tokens.json (per instance)
//	XOREST_LAMBDA_MODE           auto (default), v1, v2 or stream
//	XOREST_LOG_LEVEL, XOREST_LOG_FORMAT (default json)
//	XOREST_S3_BUCKET             default bucket of the export action (none: off);
//	XOREST_S3_ENDPOINT, XOREST_S3_PATH_STYLE, XOREST_S3_PRESIGN_EXPIRY as for serve
//	XOREST_IMPORT_ALLOW          hosts, addresses or CIDR prefixes that imports from a
//	                             URL may reach besides public addresses, comma-separated
//
// Jobs (actions, imports from a URL) run as asynchronous invocations of
// the function itself (AWS_LAMBDA_FUNCTION_NAME, set by Lambda), so its
// role needs lambda:InvokeFunction on itself (template.yaml grants it).
type lambdaConfig struct {
	xapi         multiFlag
	xapiUser     string
	caFile       string
	fingerprints multiFlag
	hostURLs     map[string]string
	insecure     bool
	tokenStore   string
	mode         deploy.Mode
	logLevel     string
	logFormat    string
	s3           exportS3Config
	importAllow  []string
	password     passwordSource
}

// passwordSource says where the XAPI password is: exactly one field is set.
type passwordSource struct {
	value, secret, ssm string
}

// defaultLambdaTokenStore lives in the instance's /tmp: tokens minted on
// one instance are unknown to the others until an S3 store is set.
const defaultLambdaTokenStore = "file:/tmp/xorest/tokens.json"

func parseLambda(getenv func(string) string) (lambdaConfig, error) {
	cfg := lambdaConfig{}
	var mode string
	fs := flag.NewFlagSet("xorest lambda", flag.ContinueOnError)
	fs.Var(&cfg.xapi, "xapi", "URL of a pool master (XOREST_XAPI, comma-separated)")
	fs.StringVar(&cfg.xapiUser, "xapi-user", "root", "XAPI user")
	fs.StringVar(&cfg.caFile, "xapi-ca-file", "", "PEM file of the hosts' CA")
	var hosts multiFlag
	fs.Var(&hosts, "xapi-host-url", hostURLsUsage)
	fs.Var(&cfg.fingerprints, "xapi-fingerprint", "pinned SHA-256 fingerprint of a host certificate")
	fs.BoolVar(&cfg.insecure, "xapi-insecure", false, "do not verify the hosts' TLS certificates (unsafe)")
	fs.StringVar(&cfg.tokenStore, "token-store", defaultLambdaTokenStore, "where tokens are stored")
	fs.StringVar(&mode, "lambda-mode", "auto", "auto, v1, v2 or stream")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "text or json")
	cfg.s3.register(fs)
	var allow multiFlag
	fs.Var(&allow, "import-allow", importAllowUsage)
	if err := parseFlags(fs, nil, getenv); err != nil {
		return cfg, err
	}
	var err error
	if cfg.importAllow, err = importAllow(allow); err != nil {
		return cfg, err
	}
	if cfg.hostURLs, err = hostURLs(hosts); err != nil {
		return cfg, err
	}
	m, err := deploy.ParseMode(mode)
	if err != nil {
		return cfg, fmt.Errorf("%w: XOREST_LAMBDA_MODE: %v", errUsage, err)
	}
	cfg.mode = m
	if len(cfg.xapi) == 0 {
		return cfg, fmt.Errorf("%w: XOREST_XAPI is not set (the pool master URLs)", errUsage)
	}
	cfg.password = passwordSource{
		value:  getenv("XOREST_XAPI_PASSWORD"),
		secret: getenv("XOREST_XAPI_PASSWORD_SECRET"),
		ssm:    getenv("XOREST_XAPI_PASSWORD_SSM"),
	}
	n := 0
	for _, s := range []string{cfg.password.value, cfg.password.secret, cfg.password.ssm} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return cfg, fmt.Errorf("%w: set exactly one of XOREST_XAPI_PASSWORD, XOREST_XAPI_PASSWORD_SECRET and XOREST_XAPI_PASSWORD_SSM (%d set)", errUsage, n)
	}
	return cfg, nil
}

// resolve returns the password, reading a secret or a parameter with
// awsCfg when it is a reference. awsCfg is loaded only for references.
func (p passwordSource) resolve(ctx context.Context, awsCfg func(context.Context) (aws.Config, error)) (string, error) {
	if p.value != "" {
		return p.value, nil
	}
	ac, err := awsCfg(ctx)
	if err != nil {
		return "", fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if p.secret != "" {
		out, err := secretsmanager.NewFromConfig(ac).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.secret)})
		if err != nil {
			return "", fmt.Errorf("reading the XAPI password from secret %s: %w", p.secret, err)
		}
		s := aws.ToString(out.SecretString)
		var fields map[string]any
		if strings.HasPrefix(strings.TrimSpace(s), "{") && json.Unmarshal([]byte(s), &fields) == nil {
			pw, ok := fields["password"].(string)
			if !ok || pw == "" {
				return "", fmt.Errorf("secret %s is a JSON object without a \"password\" string", p.secret)
			}
			return pw, nil
		}
		if s == "" {
			return "", fmt.Errorf("secret %s has no SecretString", p.secret)
		}
		return s, nil
	}
	out, err := ssm.NewFromConfig(ac).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.ssm), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("reading the XAPI password from parameter %s: %w", p.ssm, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("parameter %s is empty", p.ssm)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// lambdaWaitTimeout bounds ?wait requests on Lambda: under an API Gateway
// (an HTTP API gives up after 30 s) they must answer before the gateway
// does; a streaming Function URL may run 15 minutes, within which the
// handlers' default fits.
func lambdaWaitTimeout(mode deploy.Mode) time.Duration {
	if mode == deploy.ModeStream {
		return handlers.DefaultWaitTimeout
	}
	return 25 * time.Second
}

// newAPIServer builds the /rest/v0 handler as serve does, for the pools
// in opts (opts[0] checks Basic logins); waitTimeout bounds ?wait and
// ?sync requests (0: the handlers' default), dispatch hands jobs over
// (nil: goroutines of this process), importAllow lists what imports from
// a URL may reach besides public addresses. The caller closes the pools.
func newAPIServer(ctx context.Context, log *slog.Logger, store auth.Store, opts []xapi.Options, waitTimeout time.Duration, exports exportS3Config, dispatch func(context.Context, []byte) error, importAllow []string) (*handlers.Server, *xo.Pools, error) {
	hc := handlers.Config{
		Logger:      log,
		Tokens:      store,
		VerifyBasic: verifyBasic(opts[0]),
		WaitTimeout: waitTimeout,
		Dispatch:    dispatch,
		ImportAllow: importAllow,
	}
	if err := exports.apply(ctx, &hc); err != nil {
		return nil, nil, err
	}
	pools, err := xo.New(xo.Config{XAPI: opts})
	if err != nil {
		return nil, nil, err
	}
	hc.Pools = pools
	sv, err := handlers.NewServer(hc)
	if err != nil {
		_ = pools.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return sv, pools, nil
}

// lambdaMemoryLimit is the Go heap's soft limit on Lambda: 90% of the
// function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB), so that the
// garbage of successive exports' part buffers is collected before the
// function runs out of memory. An explicit GOMEMLIMIT wins (the runtime
// reads it).
func lambdaMemoryLimit(getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return mb << 20 * 9 / 10, true
}

// lambdaCommand runs xorest as a Lambda function (provided.al2023). It is
// what the bootstrap runs when AWS_LAMBDA_RUNTIME_API is set and no
// command is given.
func lambdaCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: xorest lambda takes no arguments; it reads the environment (XOREST_XAPI, XOREST_XAPI_USER, XOREST_XAPI_PASSWORD[_SECRET|_SSM], XOREST_TOKEN_STORE, XOREST_LAMBDA_MODE)", errUsage)
	}
	if getenv("AWS_LAMBDA_RUNTIME_API") == "" {
		return errors.New("xorest lambda runs inside AWS Lambda (or its runtime interface emulator): AWS_LAMBDA_RUNTIME_API is not set")
	}
	cfg, err := parseLambda(getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	awsCfg := sync.OnceValues(func() (aws.Config, error) { return config.LoadDefaultConfig(ctx) })
	password, err := cfg.password.resolve(ctx, func(context.Context) (aws.Config, error) { return awsCfg() })
	if err != nil {
		return err
	}
	store, err := openTokenStore(cfg.tokenStore)
	if err != nil {
		return err
	}
	opts := make([]xapi.Options, len(cfg.xapi))
	for i, u := range cfg.xapi {
		opts[i] = xapi.Options{
			URL: u, Username: cfg.xapiUser, Password: password,
			CAFile: cfg.caFile, Fingerprints: cfg.fingerprints, Insecure: cfg.insecure, HostURLs: cfg.hostURLs,
		}
	}
	// Jobs (actions, imports from a URL) run as asynchronous invocations
	// of this function, which run them through sv.RunJob.
	ac, err := awsCfg()
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	var sv *handlers.Server
	async, err := deploy.NewLambdaAsync(lambda.NewFromConfig(ac), getenv("AWS_LAMBDA_FUNCTION_NAME"),
		func(ctx context.Context, job []byte) error { return sv.RunJob(ctx, job) }, log)
	if err != nil {
		return err
	}
	sv, _, err = newAPIServer(ctx, log, store, opts, lambdaWaitTimeout(cfg.mode), cfg.s3, async.Dispatch, cfg.importAllow)
	if err != nil {
		return err
	}
	// The pools' sessions are not closed: Lambda freezes, then ends, the
	// process without notice, and XAPI expires idle sessions itself.
	if limit, ok := lambdaMemoryLimit(getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	log.Info("xorest lambda starting", "mode", cfg.mode, "pools", len(opts))
	return deploy.Start(ctx, sv, cfg.mode, async)
}
