package api

import (
	"fmt"
	"net/http"
	"strings"

	"patchtree/store"
)

// authorize checks the bearer token against the route's access: 401 without a valid token, 403
// for a valid token whose role the route does not allow.
func (s *Server) authorize(r *http.Request, a access) (*store.Token, error) {
	tok, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if !a.allows(tok.Role) {
		return nil, fmt.Errorf("%w: role %q may not %s %s", ErrForbidden, tok.Role, r.Method, r.URL.Path)
	}
	return tok, nil
}

type ctxKey int

const tokenKey ctxKey = 0

// callerToken returns the authenticated token of a request (nil on public routes).
func callerToken(r *http.Request) *store.Token {
	tok, _ := r.Context().Value(tokenKey).(*store.Token)
	return tok
}

// authenticate finds the caller's token. The token row is looked up by its public id and the
// secret's hash compared in constant time.
func (s *Server) authenticate(r *http.Request) (*store.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if value, ok := sessionCookie(r); ok {
			return s.sessionAuth(r, value) // the console's session (console_session.go)
		}
		return nil, fmt.Errorf("%w: missing bearer token (Authorization: Bearer <token>)", ErrUnauthorized)
	}
	bearer, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return nil, fmt.Errorf("%w: Authorization header must be \"Bearer <token>\"", ErrUnauthorized)
	}
	return s.tokenOf(bearer)
}

// tokenOf finds the token of a bearer string "id.secret", as the Authorization header or the
// console's sign-in carries it.
func (s *Server) tokenOf(bearer string) (*store.Token, error) {
	id, secret, ok := store.SplitBearer(strings.TrimSpace(bearer))
	if !ok {
		return nil, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	tok, err := s.backend.State().Token(nil, id)
	if err != nil {
		return nil, err
	}
	if tok == nil || !tok.SecretMatches(secret) {
		return nil, fmt.Errorf("%w: invalid or revoked token", ErrUnauthorized)
	}
	return tok, nil
}
