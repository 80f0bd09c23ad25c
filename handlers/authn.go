package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/xorest/xorest/auth"
	"github.com/xorest/xorest/xo/xapi"
)

// Authentication methods of a Principal.
const (
	MethodToken = "token" // cookie authenticationToken (or token) or Authorization: Bearer
	MethodBasic = "basic" // HTTP Basic with XAPI credentials
)

// Principal is the authenticated caller of a request.
type Principal struct {
	User    string // the XAPI user name (Basic) or the token's user
	Method  string // MethodToken or MethodBasic
	TokenID string // the token's public id, for MethodToken
}

type principalKey struct{}

// PrincipalFrom returns the caller authenticated for the request of ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Cookie names carrying a token: XO's, and its legacy one.
const (
	tokenCookie       = "authenticationToken"
	legacyTokenCookie = "token"
)

// withAuthentication requires credentials on every request: a token (cookie
// or Bearer) or HTTP Basic. Both a cookie and an Authorization header is a
// 400, as in XO.
func (s *server) withAuthentication(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if info := requestInfoFrom(r.Context()); info != nil {
			info.user = p.User
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// authenticate identifies the caller of r.
func (s *server) authenticate(r *http.Request) (Principal, error) {
	cookie := ""
	for _, name := range []string{tokenCookie, legacyTokenCookie} {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			cookie = c.Value
			break
		}
	}
	header := r.Header.Get("Authorization")
	switch {
	case cookie != "" && header != "":
		return Principal{}, BadRequest("Having multiple authentication methods is not supported, please choose one", nil)
	case cookie != "":
		return s.checkToken(r.Context(), cookie)
	case header == "":
		return Principal{}, Unauthorized("missing credentials", nil)
	}
	scheme, cred, ok := strings.Cut(header, " ")
	cred = strings.TrimSpace(cred)
	if !ok || cred == "" {
		return Principal{}, BadRequest("Malformed Authorization header", nil)
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return s.checkToken(r.Context(), cred)
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return Principal{}, BadRequest("Malformed Authorization header", nil)
		}
		user, password, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Principal{}, BadRequest("Malformed Authorization header", nil)
		}
		return s.checkBasic(r.Context(), user, password)
	default:
		return Principal{}, BadRequest("Malformed Authorization header", map[string]any{"supportedSchemes": []string{"Basic", "Bearer"}})
	}
}

// checkToken looks a token up by its hash.
func (s *server) checkToken(ctx context.Context, secret string) (Principal, error) {
	t, err := s.cfg.Tokens.Lookup(ctx, auth.Hash(secret))
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return Principal{}, Unauthorized("", nil)
	case err != nil:
		return Principal{}, Unavailable("token store unavailable", err)
	case t.Expired(s.now()):
		return Principal{}, Unauthorized("", nil)
	}
	return Principal{User: t.User, Method: MethodToken, TokenID: t.ID}, nil
}

// checkBasic verifies Basic credentials with Config.VerifyBasic.
func (s *server) checkBasic(ctx context.Context, user, password string) (Principal, error) {
	if user == "" || password == "" || s.cfg.VerifyBasic == nil {
		return Principal{}, Unauthorized("", nil)
	}
	if err := s.cfg.VerifyBasic(ctx, user, password); err != nil {
		err = fmt.Errorf("basic authentication of %q: %w", user, err)
		if errors.Is(err, xapi.ErrSessionAuthenticationFailed) {
			return Principal{}, Unauthorized("", err) // XO's answer: invalid credentials
		}
		return Principal{}, err
	}
	return Principal{User: user, Method: MethodBasic}, nil
}

// tokenRequest is the body of POST /users/authentication_tokens.
type tokenRequest struct {
	Client *struct {
		ID string `json:"id,omitempty"`
	} `json:"client,omitempty"`
	Description string `json:"description,omitempty"`
	ExpiresIn   any    `json:"expiresIn,omitempty"`
}

// tokenJSON is a token as XO shows it; ID is the plaintext secret.
type tokenJSON struct {
	Client      *tokenClient `json:"client,omitempty"`
	Created     int64        `json:"created_at"`
	Description string       `json:"description,omitempty"`
	Expiration  int64        `json:"expiration"`
	ID          string       `json:"id"`
	UserID      string       `json:"user_id"`
}

type tokenClient struct {
	ID string `json:"id"`
}

var tokenRequestSchema = map[string]any{
	"type":                 "object",
	"additionalProperties": false,
	"properties": map[string]any{
		"client": map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{"id": map[string]any{"type": "string"}}},
		"description": map[string]any{"type": "string"},
		"expiresIn": map[string]any{
			"description": `Lifetime: milliseconds, or a duration like "1 hour", "30 days" (default 30 days, from 60 s to 0.5 year)`,
			"oneOf":       []any{map[string]any{"type": "number"}, map[string]any{"type": "string"}},
		},
	},
}

var tokenResponseSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{"token": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"client":      map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}},
			"created_at":  map[string]any{"type": "integer", "description": "Unix milliseconds"},
			"description": map[string]any{"type": "string"},
			"expiration":  map[string]any{"type": "integer", "description": "Unix milliseconds"},
			"id":          map[string]any{"type": "string", "description": "The token (secret), shown only once"},
			"user_id":     map[string]any{"type": "string"},
		},
	}},
}

// createToken answers POST /rest/v0/users/authentication_tokens and
// /rest/v0/users/{id}/authentication_tokens (id "me" or the caller's own
// name, as in XO 6): it mints a token for the Basic-authenticated user. A token for the same user and
// client id replaces the earlier ones (XO extends the earlier token instead;
// a hash-only store cannot give its secret back).
func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	if p.Method != MethodBasic {
		return Unauthorized("invalid authentification. please use basic authentication", nil)
	}
	if id := r.PathValue("id"); id != "" && id != "me" && id != p.User {
		return Forbidden("forbidden operation: create authentication token", nil)
	}
	var req tokenRequest
	if err := decodeJSONBody(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	params := auth.NewParams{User: p.User, Description: req.Description, Now: s.now()}
	if req.Client != nil {
		params.ClientID = req.Client.ID
	}
	if req.ExpiresIn != nil {
		d, err := auth.ParseExpiresIn(req.ExpiresIn)
		if err == nil {
			err = auth.CheckValidity(d)
		}
		if err != nil {
			return InvalidParameters("invalid expiresIn duration", map[string]any{"expiresIn": req.ExpiresIn})
		}
		params.Validity = d
	}
	secret, tok, err := auth.New(params)
	if err != nil {
		return fmt.Errorf("minting a token: %w", err)
	}
	if params.ClientID != "" {
		if err := s.revokeClientTokens(r.Context(), p.User, params.ClientID); err != nil {
			return err
		}
	}
	if err := s.cfg.Tokens.Create(r.Context(), tok); err != nil {
		return Unavailable("token store unavailable", err)
	}
	out := tokenJSON{Created: tok.Created, Description: tok.Description, Expiration: tok.Expires, ID: secret, UserID: tok.User}
	if tok.ClientID != "" {
		out.Client = &tokenClient{ID: tok.ClientID}
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"token": out})
}

// revokeClientTokens deletes the tokens of user minted for clientID.
func (s *server) revokeClientTokens(ctx context.Context, user, clientID string) error {
	tokens, err := s.cfg.Tokens.List(ctx)
	if err != nil {
		return Unavailable("token store unavailable", err)
	}
	for _, t := range tokens {
		if t.User == user && t.ClientID == clientID {
			if err := s.cfg.Tokens.Delete(ctx, t.ID); err != nil && !errors.Is(err, auth.ErrNotFound) {
				return Unavailable("token store unavailable", err)
			}
		}
	}
	return nil
}

// decodeJSONBody decodes a JSON object body of at most limit bytes into v.
// An empty body leaves v alone. Unknown fields, trailing data and type
// mismatches are 422; an oversized body is 413.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &Error{Kind: ErrTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
		return fmt.Errorf("reading request body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return InvalidParameters("invalid parameters", map[string]any{"body": err.Error()})
	}
	if dec.More() {
		return InvalidParameters("invalid parameters", map[string]any{"body": "unexpected data after the JSON value"})
	}
	return nil
}

// writeJSON writes v as JSON pretty-printed with 2 spaces, as XO does.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(data)
	return err
}
