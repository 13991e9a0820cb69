package store

import "errors"

// Sentinel errors returned (wrapped with context) by the store. Callers map them with errors.Is.
var (
	// ErrNotFound means the addressed row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write contradicts existing state (for example a duplicate id).
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the row itself is malformed (missing id, unknown role, ...).
	ErrInvalid = errors.New("invalid")
	// ErrCorruptSnapshot means a snapshot stream could not be decoded.
	ErrCorruptSnapshot = errors.New("corrupt snapshot")
)
