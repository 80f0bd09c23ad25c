package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	valid := f.mint(t, "alice", time.Hour)
	short := f.mint(t, "bob", time.Minute)
	f.advance(2 * time.Minute) // short has expired
	tests := []struct {
		name   string
		opts   []func(*http.Request)
		status int
		user   string // in the access log
		body   string // part of the error body
	}{
		{"no credentials", nil, 401, "", `"missing credentials"`},
		{"cookie", []func(*http.Request){cookie(tokenCookie, valid)}, 200, "alice", ""},
		{"legacy cookie", []func(*http.Request){cookie(legacyTokenCookie, valid)}, 200, "alice", ""},
		{"bearer", []func(*http.Request){header("Authorization", "Bearer "+valid)}, 200, "alice", ""},
		{"bearer lower case", []func(*http.Request){header("Authorization", "bearer "+valid)}, 200, "alice", ""},
		{"unknown bearer", []func(*http.Request){header("Authorization", "Bearer x"+valid)}, 401, "", `"invalid credentials"`},
		{"unknown cookie", []func(*http.Request){cookie(tokenCookie, "nope")}, 401, "", `"invalid credentials"`},
		{"expired token", []func(*http.Request){header("Authorization", "Bearer "+short)}, 401, "", `"invalid credentials"`},
		{"basic admin", []func(*http.Request){asAdmin()}, 200, adminUser, ""},
		{"basic password with colons", []func(*http.Request){basic("colon", "a:b:c")}, 200, "colon", ""},
		{"basic wrong password", []func(*http.Request){basic(adminUser, "nope")}, 401, "", `"invalid credentials"`},
		{"basic empty password", []func(*http.Request){basic(adminUser, "")}, 401, "", `"invalid credentials"`},
		{"basic not a pool admin", []func(*http.Request){basic("operator", "op")}, 403, "", `"RBAC_PERMISSION_DENIED`},
		{"basic XAPI unreachable", []func(*http.Request){basic("down", "x")}, 503, "", `"XAPI is unreachable"`},
		{"basic without colon", []func(*http.Request){rawBasic("rootonly")}, 400, "", `"Malformed Authorization header"`},
		{"basic not base64", []func(*http.Request){header("Authorization", "Basic !!!")}, 400, "", `"Malformed Authorization header"`},
		{"scheme without value", []func(*http.Request){header("Authorization", "Bearer")}, 400, "", `"Malformed Authorization header"`},
		{"unknown scheme", []func(*http.Request){header("Authorization", "Digest abc")}, 400, "", `"Malformed Authorization header"`},
		{"cookie and authorization", []func(*http.Request){cookie(tokenCookie, valid), asAdmin()}, 400, "", `"Having multiple authentication methods is not supported, please choose one"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.logs.String())
			rec := f.do(t, "GET", BasePath, nil, tt.opts...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.body != "" && !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("body %s does not contain %s", rec.Body, tt.body)
			}
			if (rec.Header().Get("WWW-Authenticate") != "") != (tt.status == 401) {
				t.Errorf("WWW-Authenticate %q with status %d", rec.Header().Get("WWW-Authenticate"), tt.status)
			}
			lines := logLines(t, f.logs.String()[before:])
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			if got, _ := lines[0]["user"].(string); got != tt.user {
				t.Errorf("logged user %q, want %q", got, tt.user)
			}
		})
	}
}

func TestCreateToken(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		opts     []func(*http.Request)
		status   int
		validity time.Duration // of a created token
		errBody  string
	}{
		{"no body", "", []func(*http.Request){asAdmin()}, 201, 30 * 24 * time.Hour, ""},
		{"empty object", "{}", []func(*http.Request){asAdmin()}, 201, 30 * 24 * time.Hour, ""},
		{"all fields", `{"client": {"id": "my-fav-client"}, "description": "token for CLI usage", "expiresIn": "1 hour"}`, []func(*http.Request){asAdmin()}, 201, time.Hour, ""},
		{"expiresIn ms", `{"expiresIn": 120000}`, []func(*http.Request){asAdmin()}, 201, 2 * time.Minute, ""},
		{"expiresIn half year", `{"expiresIn": "0.5 year"}`, []func(*http.Request){asAdmin()}, 201, 15778800000 * time.Millisecond, ""},
		{"expiresIn too short", `{"expiresIn": "59 seconds"}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid expiresIn duration"`},
		{"expiresIn too long", `{"expiresIn": "1 year"}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid expiresIn duration"`},
		{"expiresIn garbage", `{"expiresIn": "soon"}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid expiresIn duration"`},
		{"expiresIn bool", `{"expiresIn": true}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid expiresIn duration"`},
		{"unknown field", `{"user": "someone-else"}`, []func(*http.Request){asAdmin()}, 422, 0, `unknown field`},
		{"unknown client field", `{"client": {"name": "x"}}`, []func(*http.Request){asAdmin()}, 422, 0, `unknown field`},
		{"wrong type", `{"description": 3}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid parameters"`},
		{"not json", `description=x`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid parameters"`},
		{"two values", `{} {}`, []func(*http.Request){asAdmin()}, 422, 0, `"invalid parameters"`},
		{"too large", `{"description": "` + strings.Repeat("x", 2000) + `"}`, []func(*http.Request){asAdmin()}, 413, 0, `"request body larger than 1024 bytes"`},
		{"no credentials", `{}`, nil, 401, 0, `"missing credentials"`},
		{"bad password", `{}`, []func(*http.Request){basic(adminUser, "x")}, 401, 0, `"invalid credentials"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 1024 })
			rec := f.do(t, "POST", BasePath+"/users/authentication_tokens", strings.NewReader(tt.body), tt.opts...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 201 {
				if !strings.Contains(rec.Body.String(), tt.errBody) {
					t.Errorf("body %s does not contain %s", rec.Body, tt.errBody)
				}
				if list, _ := f.store.List(context.Background()); len(list) != 0 {
					t.Errorf("a failed request stored %d tokens", len(list))
				}
				return
			}
			var resp struct {
				Token map[string]any `json:"token"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			secret, _ := resp.Token["id"].(string)
			if len(secret) != 43 {
				t.Fatalf("token id %q: want 43 characters", secret)
			}
			created := f.clock().UnixMilli()
			if resp.Token["created_at"] != float64(created) || resp.Token["expiration"] != float64(created+tt.validity.Milliseconds()) || resp.Token["user_id"] != adminUser {
				t.Errorf("token %v: want created_at %d, expiration +%v, user %s", resp.Token, created, tt.validity, adminUser)
			}
			// The response shape, without its random secret.
			golden(t, goldenName("tokens", tt.name, "json"), []byte(strings.Replace(rec.Body.String(), secret, "<secret>", 1)))
			// The new token authenticates, by cookie and by Bearer.
			for _, opt := range []func(*http.Request){cookie(tokenCookie, secret), header("Authorization", "Bearer "+secret)} {
				if rec := f.do(t, "GET", BasePath, nil, opt); rec.Code != 200 {
					t.Errorf("the new token does not authenticate: %d %s", rec.Code, rec.Body)
				}
			}
			// Only its hash is stored.
			data, err := os.ReadFile(f.store.Path())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), secret) {
				t.Error("the token file holds the plaintext token")
			}
			if strings.Contains(f.logs.String(), secret) {
				t.Error("the token was logged")
			}
			// It stops working when it expires.
			f.advance(tt.validity)
			if rec := f.do(t, "GET", BasePath, nil, cookie(tokenCookie, secret)); rec.Code != 401 {
				t.Errorf("expired token: status %d", rec.Code)
			}
		})
	}
}

func TestCreateTokenUserPath(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		status int
	}{
		{"me", "me", 201},
		{"own name", adminUser, 201},
		{"someone else", "alice", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			rec := f.do(t, "POST", BasePath+"/users/"+tt.user+"/authentication_tokens", strings.NewReader(`{"description": "x"}`), asAdmin())
			if rec.Code != tt.status {
				t.Errorf("%d %s, want %d", rec.Code, rec.Body, tt.status)
			}
		})
	}
}

func TestCreateTokenNeedsBasic(t *testing.T) {
	f := newFixture(t)
	secret := f.mint(t, "root", time.Hour)
	rec := f.do(t, "POST", BasePath+"/users/authentication_tokens", strings.NewReader("{}"), header("Authorization", "Bearer "+secret))
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "please use basic authentication") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestCreateTokenReplacesSameClient(t *testing.T) {
	f := newFixture(t)
	mint := func(body string) string {
		rec := f.do(t, "POST", BasePath+"/users/authentication_tokens", strings.NewReader(body), asAdmin())
		if rec.Code != 201 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		var resp struct{ Token struct{ ID string } }
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Token.ID
	}
	first := mint(`{"client": {"id": "cli"}}`)
	other := mint(`{"client": {"id": "other"}}`)
	second := mint(`{"client": {"id": "cli"}}`)
	for _, tt := range []struct {
		name   string
		secret string
		status int
	}{{"replaced", first, 401}, {"other client", other, 200}, {"replacement", second, 200}} {
		if rec := f.do(t, "GET", BasePath, nil, header("Authorization", "Bearer "+tt.secret)); rec.Code != tt.status {
			t.Errorf("%s token: status %d, want %d", tt.name, rec.Code, tt.status)
		}
	}
}
