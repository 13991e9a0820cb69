package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"patchtree/langalert"
	"patchtree/node"
	"patchtree/replication/hierarchy"
	"patchtree/replication/importer"
	"patchtree/store"
)

// Sentinel errors of the HTTP layer. Handlers wrap them with context; writeError maps every
// error to its status with errors.Is, never by its text.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrTooLarge     = errors.New("request body too large")
	ErrNoRoute      = errors.New("no such route")
	ErrMethod       = errors.New("method not allowed")
)

// statusFor maps an error to an HTTP status code.
func statusFor(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, store.ErrInvalid), errors.Is(err, langalert.ErrInvalidRange):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthorized), errors.Is(err, node.ErrJoinRefused), errors.Is(err, hierarchy.ErrCredentialRevoked):
		return http.StatusUnauthorized
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrForbidden), errors.Is(err, node.ErrForbiddenJoin), errors.Is(err, hierarchy.ErrWrongChild),
		errors.Is(err, importer.ErrNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, ErrNoRoute), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, store.ErrConflict), errors.Is(err, hierarchy.ErrNoLanguages), errors.Is(err, node.ErrNoSiteCA):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, node.ErrNotLeader), errors.Is(err, node.ErrNoLeader), errors.Is(err, node.ErrNotReady),
		errors.Is(err, importer.ErrNotLeader), errors.Is(err, hierarchy.ErrNotLeading):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeError writes err as {"error": "..."} with its status.
func writeError(w http.ResponseWriter, err error) {
	code := statusFor(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, errorBody{Error: err.Error()})
}

// writeJSON writes v as indented JSON with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) {
	buf, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		buf, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encode response: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(buf, '\n'))
}
