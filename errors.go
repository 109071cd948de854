package vigil

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers branch on. Adapters translate library errors
// into these, and one mapping per edge turns them into HTTP statuses
// (ErrInvalid → 400, ErrNotFound → 404, ErrTooLarge → 413,
// ErrUnsupportedMedia → 415, ErrUnavailable → 503).
var (
	// ErrInvalid marks input that failed validation; see FieldError.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound marks a service, alert or record that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge marks a body or batch over its configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnsupportedMedia marks a body whose content type is not accepted.
	ErrUnsupportedMedia = errors.New("unsupported media type")
	// ErrUnavailable marks a dependency (NATS, JetStream) that did not answer.
	ErrUnavailable = errors.New("unavailable")
)

// FieldError is a validation failure of one input field. Field is the JSON
// path of the offending value ("next_in", "owner.target", "[3].service"), and
// errors.Is(err, ErrInvalid) holds for every FieldError.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: msg".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a *FieldError for field with a formatted message.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// PrefixField returns err with prefix prepended to its field path when err is
// a *FieldError ("[3]" + "service" → "[3].service"); other errors pass through.
func PrefixField(prefix string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	f := prefix
	switch {
	case fe.Field == "":
	case fe.Field[0] == '[':
		f += fe.Field
	default:
		f += "." + fe.Field
	}
	return &FieldError{Field: f, Msg: fe.Msg}
}
