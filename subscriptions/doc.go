// Package subscriptions holds what the reserved subscription APIs of
// PROTOCOL.md §6–7 rest on: for now the server's webhook signing key,
// created once and kept in Pebble, and its JWK Set.
//
// Concurrency contract: a Keys value is immutable once loaded and safe for
// concurrent use.
package subscriptions
