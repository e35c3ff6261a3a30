// Package protocol holds the wire-level rules of the Durable Streams protocol
// that do not depend on storage or actors: offset tokens, request header
// parsing and validation, content-type comparison and JSON-mode message
// splitting. Everything here is pure and safe for concurrent use.
package protocol
