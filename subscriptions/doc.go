// Package subscriptions holds what the reserved subscription APIs of
// PROTOCOL.md §6–7 rest on: the server's webhook signing key, created once
// and kept in Pebble, with its JWK Set; and subscription patterns with the
// index that finds the subscriptions of a stream path.
//
// Concurrency contract: a Keys value is immutable once loaded; an Index
// serves matches concurrently (shared lock) and changes exclusively.
package subscriptions
