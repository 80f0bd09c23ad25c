package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
	"gopkg.in/yaml.v3"

	"github.com/xorest/xorest/deploy"
	"github.com/xorest/xorest/internal/peertest"
)

const testSecretARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:xapi-AbCdEf"

// TestTemplate parses template.yaml with goformation (its SAM schema
// rejects unknown properties) and checks what the deployment relies on.
func TestTemplate(t *testing.T) {
	path := filepath.Join(peertest.MustRepoRoot(t), "template.yaml")
	tpl, err := goformation.OpenWithOptions(path, &intrinsics.ProcessorOptions{ParameterOverrides: map[string]interface{}{
		"XapiUrls":              "https://10.0.0.10,https://10.0.1.10",
		"XapiPasswordSecretArn": testSecretARN,
		"VpcSubnetIds":          []interface{}{"subnet-1", "subnet-2"},
		"VpcSecurityGroupIds":   []interface{}{"sg-1"},
		"ImportAllow":           "10.0.5.0/24",
	}})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	if tpl.Transform == nil || tpl.Transform.String == nil || *tpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %v, want AWS::Serverless-2016-10-31", tpl.Transform)
	}
	for _, p := range []string{"XapiUrls", "XapiUser", "XapiPasswordSecretArn", "VpcSubnetIds", "VpcSecurityGroupIds", "ImportAllow"} {
		if _, ok := tpl.Parameters[p]; !ok {
			t.Errorf("parameter %s is missing", p)
		}
	}

	fns := tpl.GetAllServerlessFunctionResources()
	if len(fns) != 1 {
		t.Fatalf("%d functions, want 1", len(fns))
	}
	fn, err := tpl.GetServerlessFunctionWithName("Function")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("function", func(t *testing.T) {
		if !slices.Equal(fn.Architectures, []string{"arm64"}) {
			t.Errorf("Architectures %v, want [arm64]", fn.Architectures)
		}
		if str(fn.Runtime) != "provided.al2023" || str(fn.Handler) != "bootstrap" {
			t.Errorf("Runtime %q, Handler %q", str(fn.Runtime), str(fn.Handler))
		}
		if fn.CodeUri == nil || str(fn.CodeUri.String) != "dist/xorest-lambda.zip" {
			t.Errorf("CodeUri is not the zip `make lambda` makes")
		}
		if fn.Timeout == nil || *fn.Timeout > 900 {
			t.Errorf("Timeout %v, want at most 900", fn.Timeout)
		}
		if fn.EventInvokeConfig == nil || fn.EventInvokeConfig.MaximumRetryAttempts == nil || *fn.EventInvokeConfig.MaximumRetryAttempts != 0 {
			t.Error("async jobs may be retried: EventInvokeConfig.MaximumRetryAttempts is not 0")
		}
		env := fn.Environment.Variables
		if env["XOREST_XAPI_PASSWORD_SECRET"] != testSecretARN || env["XOREST_XAPI"] != "https://10.0.0.10,https://10.0.1.10" {
			t.Errorf("environment %v", env)
		}
		if env["XOREST_IMPORT_ALLOW"] != "10.0.5.0/24" {
			t.Errorf("XOREST_IMPORT_ALLOW %q does not come from the ImportAllow parameter", env["XOREST_IMPORT_ALLOW"])
		}
		if _, err := deploy.ParseMode(env["XOREST_LAMBDA_MODE"]); err != nil {
			t.Error(err)
		}
		if !strings.HasPrefix(env["XOREST_TOKEN_STORE"], "s3://") {
			t.Errorf("XOREST_TOKEN_STORE %q: want an S3 store (instances share nothing else)", env["XOREST_TOKEN_STORE"])
		}
		if fn.VpcConfig == nil || !slices.Equal(fn.VpcConfig.SubnetIds, []string{"subnet-1", "subnet-2"}) || !slices.Equal(fn.VpcConfig.SecurityGroupIds, []string{"sg-1"}) {
			t.Errorf("VpcConfig %+v does not come from the parameters", fn.VpcConfig)
		}
	})
	t.Run("function URL streams", func(t *testing.T) {
		if fn.FunctionUrlConfig == nil || str(fn.FunctionUrlConfig.InvokeMode) != "RESPONSE_STREAM" {
			t.Fatalf("FunctionUrlConfig %+v, want InvokeMode RESPONSE_STREAM", fn.FunctionUrlConfig)
		}
	})
	t.Run("HTTP API with payload 2.0", func(t *testing.T) {
		if len(tpl.GetAllServerlessHttpApiResources()) != 1 {
			t.Errorf("want one AWS::Serverless::HttpApi")
		}
		var n int
		for name, ev := range fn.Events {
			if ev.Type != "HttpApi" {
				t.Errorf("event %s is a %s", name, ev.Type)
				continue
			}
			n++
			if ev.Properties == nil || ev.Properties.HttpApiEvent == nil || str(ev.Properties.HttpApiEvent.PayloadFormatVersion) != "2.0" {
				t.Errorf("event %s: PayloadFormatVersion is not 2.0", name)
			}
		}
		if n != 1 {
			t.Errorf("%d HttpApi events, want 1", n)
		}
	})
	t.Run("bucket aborts incomplete multipart uploads", func(t *testing.T) {
		b, err := tpl.GetS3BucketWithName("Bucket")
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		if b.LifecycleConfiguration != nil {
			for _, r := range b.LifecycleConfiguration.Rules {
				if r.Status == "Enabled" && r.AbortIncompleteMultipartUpload != nil && r.AbortIncompleteMultipartUpload.DaysAfterInitiation >= 1 {
					ok = true
				}
			}
		}
		if !ok {
			t.Error("no enabled AbortIncompleteMultipartUpload rule")
		}
		if b.PublicAccessBlockConfiguration == nil || !boolv(b.PublicAccessBlockConfiguration.BlockPublicPolicy) || !boolv(b.PublicAccessBlockConfiguration.RestrictPublicBuckets) {
			t.Error("the bucket does not block public access")
		}
	})
	t.Run("least privilege", func(t *testing.T) {
		checkPolicies(t, path, fn)
	})
}

// checkPolicies checks the function's policy statements, both after
// goformation resolved the parameters and in the raw YAML (goformation
// resolves references to resources, such as the bucket, to empty
// strings).
func checkPolicies(t *testing.T, path string, fn *serverless.Function) {
	if fn.Policies == nil || fn.Policies.IAMPolicyDocumentArray == nil || len(*fn.Policies.IAMPolicyDocumentArray) != 1 {
		t.Fatal("want one inline policy document, no managed policies")
	}
	raw := rawStatements(t, path)
	want := map[string]struct {
		actions  []string
		resource string // raw: tag + " " + value
	}{
		"BucketList":    {[]string{"s3:ListBucket", "s3:ListBucketMultipartUploads"}, "!Sub arn:${AWS::Partition}:s3:::${Bucket}"},
		"BucketObjects": {[]string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}, "!Sub arn:${AWS::Partition}:s3:::${Bucket}/*"},
		"XapiPassword":  {[]string{"secretsmanager:GetSecretValue"}, "!Ref XapiPasswordSecretArn"},
		"AsyncJobs":     {[]string{"lambda:InvokeFunction"}, "!Sub arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-xorest"},
		"VpcAccess": {[]string{"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
			"ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}, "!!str *"},
	}
	if len(raw) != len(want) {
		t.Errorf("%d statements, want %d", len(raw), len(want))
	}
	for _, s := range raw {
		w, ok := want[s.sid]
		if !ok {
			t.Errorf("unexpected statement %q", s.sid)
			continue
		}
		if s.effect != "Allow" || !slices.Equal(s.actions, w.actions) || s.resource != w.resource {
			t.Errorf("statement %s: %s %v on %q; want Allow %v on %q", s.sid, s.effect, s.actions, s.resource, w.actions, w.resource)
		}
		for _, a := range s.actions {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s: wildcard action %s", s.sid, a)
			}
		}
	}
	// The function invokes itself: the statement names its own function.
	doc := (*fn.Policies.IAMPolicyDocumentArray)[0]
	for _, st := range doc.Statement {
		m, _ := st.(map[string]interface{})
		if m["Sid"] == "AsyncJobs" {
			if r, _ := m["Resource"].(string); !strings.HasSuffix(r, ":function:"+str(fn.FunctionName)) {
				t.Errorf("AsyncJobs resource %q does not name the function %q", r, str(fn.FunctionName))
			}
		}
		if m["Sid"] == "XapiPassword" && m["Resource"] != testSecretARN {
			t.Errorf("XapiPassword resource %v, want the secret parameter", m["Resource"])
		}
	}
}

type rawStatement struct {
	sid, effect, resource string
	actions               []string
}

// rawStatements reads the policy statements from the YAML as written,
// with each resource as "TAG VALUE".
func rawStatements(t *testing.T, path string) []rawStatement {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		n = n.Content[0]
	}
	for _, key := range []string{"Resources", "Function", "Properties", "Policies"} {
		if n = mapValue(n, key); n == nil {
			t.Fatalf("template has no %s", key)
		}
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) != 1 {
		t.Fatal("Policies is not a one-document list")
	}
	st := mapValue(n.Content[0], "Statement")
	if st == nil {
		t.Fatal("the policy has no Statement")
	}
	var out []rawStatement
	for _, s := range st.Content {
		r := rawStatement{}
		if v := mapValue(s, "Sid"); v != nil {
			r.sid = v.Value
		}
		if v := mapValue(s, "Effect"); v != nil {
			r.effect = v.Value
		}
		if v := mapValue(s, "Resource"); v != nil {
			r.resource = v.Tag + " " + v.Value
		}
		if v := mapValue(s, "Action"); v != nil {
			if v.Kind == yaml.ScalarNode {
				r.actions = []string{v.Value}
			}
			for _, a := range v.Content {
				r.actions = append(r.actions, a.Value)
			}
		}
		out = append(out, r)
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func boolv(p *bool) bool { return p != nil && *p }
