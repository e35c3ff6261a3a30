package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrEmptyJSONArray reports an append whose body is the empty array (§9.1.3).
var ErrEmptyJSONArray = fmt.Errorf("%w: empty JSON array appends nothing", ErrBadRequest)

// SplitJSON validates a JSON-mode body and splits it into messages: a
// top-level array is flattened exactly one level, any other value is one
// message (§9.1.2). Each message is the exact source text of the value.
// allowEmpty permits "[]" (valid on create, rejected on append).
func SplitJSON(body []byte, allowEmpty bool) ([][]byte, error) {
	// Only JSON's own whitespace (RFC 8259): bytes.TrimSpace would also
	// accept Unicode spaces around an otherwise valid value.
	trimmed := bytes.Trim(body, " \t\r\n")
	if !json.Valid(trimmed) {
		return nil, fmt.Errorf("%w: body is not valid JSON", ErrBadRequest)
	}
	if trimmed[0] != '[' {
		return [][]byte{trimmed}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // '['
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	var msgs [][]byte
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		msgs = append(msgs, []byte(raw))
	}
	if len(msgs) == 0 && !allowEmpty {
		return nil, ErrEmptyJSONArray
	}
	return msgs, nil
}

// AppendJSONArray appends messages to dst as one JSON array.
func AppendJSONArray(dst []byte, msgs [][]byte) []byte {
	dst = append(dst, '[')
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m...)
	}
	return append(dst, ']')
}

// IsBadRequest reports whether err is a request validation error.
func IsBadRequest(err error) bool { return errors.Is(err, ErrBadRequest) }
