// Package subscriptions holds what the reserved subscription APIs of
// PROTOCOL.md §6–7 rest on: the server's webhook signing key, created once
// and kept in Pebble, with its JWK Set and the Webhook-Signature it signs
// deliveries with (§7.1); subscription patterns with the
// index that finds the subscriptions of a stream path; and the webhook URL
// policy (§6.2, §12.8) with the HTTP client that keeps to it.
//
// Concurrency contract: a Keys value is immutable once loaded; an Index
// serves matches concurrently (shared lock) and changes exclusively; a
// WebhookPolicy is a value and its Client is safe for concurrent use.
package subscriptions
