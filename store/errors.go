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
	// ErrUnknownRecord means a snapshot holds a record type this version does not know and may
	// not skip: it was written by a newer patchtree.
	ErrUnknownRecord = errors.New("snapshot record of a type this version of patchtree does not know")
)
