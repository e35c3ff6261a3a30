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
// A single value nested deeper than maxMessageDepth is refused.
// allowEmpty permits "[]" (valid on create, rejected on append).
func SplitJSON(body []byte, allowEmpty bool) ([][]byte, error) {
	// Only JSON's own whitespace (RFC 8259): bytes.TrimSpace would also
	// accept Unicode spaces around an otherwise valid value.
	trimmed := bytes.Trim(body, " \t\r\n")
	if !json.Valid(trimmed) {
		return nil, fmt.Errorf("%w: body is not valid JSON", ErrBadRequest)
	}
	if trimmed[0] != '[' {
		// Nesting 10,000 levels takes at least 20,000 bytes: only bodies
		// that large need the scan.
		if len(trimmed) >= 2*(maxMessageDepth+1) && nestingDepth(trimmed) > maxMessageDepth {
			return nil, fmt.Errorf("%w: JSON value nested deeper than %d levels", ErrBadRequest, maxMessageDepth)
		}
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

// maxMessageDepth is how deeply a message may nest arrays and objects.
// encoding/json, which validates bodies here and decodes reads in many
// clients, refuses JSON nested more than 10,000 levels, and a read returns
// messages inside an array, one level deeper than they were sent. The
// messages of a top-level array are within the bound by construction; a
// single value must be checked, or a stream would store a message that
// makes every read of it invalid to such a decoder.
const maxMessageDepth = 10000 - 1

// nestingDepth returns how deeply the valid JSON b nests arrays and objects.
func nestingDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
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
