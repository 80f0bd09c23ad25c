package xo

import "errors"

// ErrNotFound matches (errors.Is) every *NotFoundError.
var ErrNotFound = errors.New("xo: no such object")

// NotFoundError reports an unknown object id. Its message is XO's
// noSuchObject message, "no such VM <id>", for the HTTP layer's 404 body.
type NotFoundError struct {
	// Type is the kind that was looked up ("VM", "SR", "alarm", …), or ""
	// for a lookup of any kind.
	Type string
	// ID is the id that was looked up.
	ID string
}

// Error returns "no such <type> <id>" ("no such object <id>" without a
// type).
func (e *NotFoundError) Error() string {
	t := e.Type
	if t == "" {
		t = "object"
	}
	return "no such " + t + " " + e.ID
}

// Is makes a NotFoundError match ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }
