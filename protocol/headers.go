package protocol

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"strconv"
	"strings"
	"time"
)

// Protocol header names, in canonical form.
const (
	HeaderStreamNextOffset      = "Stream-Next-Offset"
	HeaderStreamUpToDate        = "Stream-Up-To-Date"
	HeaderStreamClosed          = "Stream-Closed"
	HeaderStreamCursor          = "Stream-Cursor"
	HeaderStreamSeq             = "Stream-Seq"
	HeaderStreamTTL             = "Stream-Ttl"
	HeaderStreamExpiresAt       = "Stream-Expires-At"
	HeaderStreamSSEDataEncoding = "Stream-Sse-Data-Encoding"
	HeaderProducerID            = "Producer-Id"
	HeaderProducerEpoch         = "Producer-Epoch"
	HeaderProducerSeq           = "Producer-Seq"
	HeaderProducerExpectedSeq   = "Producer-Expected-Seq"
	HeaderProducerReceivedSeq   = "Producer-Received-Seq"
	HeaderStreamForkedFrom      = "Stream-Forked-From"
	HeaderStreamForkOffset      = "Stream-Fork-Offset"
	HeaderStreamForkSubOffset   = "Stream-Fork-Sub-Offset"
)

// DefaultContentType is used when a stream is created without Content-Type.
const DefaultContentType = "application/octet-stream"

// MaxSafeInteger is the largest producer epoch or sequence accepted (2^53-1),
// so that JavaScript clients can represent every value exactly.
const MaxSafeInteger = 1<<53 - 1

// maxTTLSeconds bounds Stream-TTL so deadlines never overflow time.Time
// arithmetic (about 290 years of nanoseconds; 100 years is plenty).
const maxTTLSeconds = 100 * 365 * 24 * 3600

// MaxExpiresAt returns the latest Stream-Expires-At accepted: the last
// instant whose Unix time in nanoseconds fits in an int64 (2262-04-11),
// which is how deadlines are ordered in storage. A later deadline would
// wrap around there and come due at once.
func MaxExpiresAt() time.Time { return time.Unix(0, math.MaxInt64).UTC() }

// Errors returned by the parsers; each wraps ErrBadRequest so the HTTP layer
// can map any of them to 400.
var (
	// ErrBadRequest is the parent of every header validation error.
	ErrBadRequest = errors.New("bad request")
	// ErrTTLAndExpiresAt reports a create request carrying both expiry forms.
	ErrTTLAndExpiresAt = fmt.Errorf("%w: Stream-TTL and Stream-Expires-At are mutually exclusive", ErrBadRequest)
	// ErrPartialProducer reports some but not all of the producer headers.
	ErrPartialProducer = fmt.Errorf("%w: Producer-Id, Producer-Epoch and Producer-Seq must be sent together", ErrBadRequest)
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}

// IsTrue reports whether a Stream-Closed style flag is set: only the exact
// value "true", compared case-insensitively, counts (§4.1).
func IsTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// parseCanonicalUint accepts a non-negative decimal without sign, leading
// zeros, fraction or exponent, and at most max.
func parseCanonicalUint(v string, max uint64) (uint64, bool) {
	if v == "" || len(v) > 20 || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

// Expiry is a stream's lifetime configuration: a sliding TTL, an absolute
// deadline, or neither.
type Expiry struct {
	TTL       time.Duration // > 0 or HasTTL with 0
	HasTTL    bool
	ExpiresAt time.Time // zero when absent
}

// Deadline returns when a stream with this expiry, last read or written at
// lastAccess, expires, and whether it expires at all. Expires-At is absolute;
// a TTL slides from the last access. This is the one place the rule lives.
func (e Expiry) Deadline(lastAccess time.Time) (time.Time, bool) {
	switch {
	case !e.ExpiresAt.IsZero():
		return e.ExpiresAt, true
	case e.HasTTL:
		return lastAccess.Add(e.TTL), true
	}
	return time.Time{}, false
}

// ParseExpiry validates Stream-TTL and Stream-Expires-At (§5.1). An
// Expires-At must be later than 0001-01-01T00:00:00Z and not later than
// MaxExpiresAt; past deadlines are accepted.
func ParseExpiry(ttl, expiresAt string) (Expiry, error) {
	var e Expiry
	if ttl != "" && expiresAt != "" {
		return e, ErrTTLAndExpiresAt
	}
	if ttl != "" {
		n, ok := parseCanonicalUint(ttl, maxTTLSeconds)
		if !ok {
			return e, badRequest("Stream-TTL must be a non-negative integer number of seconds without sign or leading zeros, got %q", ttl)
		}
		e.HasTTL, e.TTL = true, time.Duration(n)*time.Second
	}
	if expiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, expiresAt)
		if err != nil {
			return e, badRequest("Stream-Expires-At must be an RFC 3339 timestamp, got %q", expiresAt)
		}
		if t.After(MaxExpiresAt()) {
			return e, badRequest("Stream-Expires-At must not be later than %s, got %q", MaxExpiresAt().Format(time.RFC3339), expiresAt)
		}
		// The zero time.Time means "no deadline" in Expiry, so an accepted
		// deadline must come after it: "0001-01-01T00:00:00Z" would
		// otherwise create a stream that never expires, and an earlier
		// instant (year 0 with a positive offset is year -1 in UTC) cannot
		// be stored as RFC 3339 at all.
		if !t.After(time.Time{}) {
			return e, badRequest("Stream-Expires-At must be later than 0001-01-01T00:00:00Z, got %q", expiresAt)
		}
		e.ExpiresAt = t.UTC()
	}
	return e, nil
}

// ParseForkSubOffset validates Stream-Fork-Sub-Offset (§4.2): a
// non-negative decimal integer without sign or leading zeros.
func ParseForkSubOffset(v string) (uint64, error) {
	n, ok := parseCanonicalUint(v, MaxSafeInteger)
	if !ok {
		return 0, badRequest("Stream-Fork-Sub-Offset must be a non-negative integer, got %q", v)
	}
	return n, nil
}

// Producer identifies an idempotent producer request (§5.2.1).
type Producer struct {
	ID    string
	Epoch uint64
	Seq   uint64
}

// ParseProducer validates the producer headers. It returns nil when none is
// present. How long a Producer-Id may be is the server's setting (httpapi,
// --max-header-value-bytes), not a rule of the protocol.
func ParseProducer(id, epoch, seq string, idSet, epochSet, seqSet bool) (*Producer, error) {
	if !idSet && !epochSet && !seqSet {
		return nil, nil
	}
	if !idSet || !epochSet || !seqSet {
		return nil, ErrPartialProducer
	}
	if id == "" {
		return nil, badRequest("Producer-Id must not be empty")
	}
	e, ok := parseCanonicalUint(epoch, MaxSafeInteger)
	if !ok {
		return nil, badRequest("Producer-Epoch must be an integer in [0, 2^53-1], got %q", epoch)
	}
	s, ok := parseCanonicalUint(seq, MaxSafeInteger)
	if !ok {
		return nil, badRequest("Producer-Seq must be an integer in [0, 2^53-1], got %q", seq)
	}
	return &Producer{ID: id, Epoch: e, Seq: s}, nil
}

// ContentType is a parsed media type: the value as sent (returned to
// readers verbatim) and its lower-cased essence used for comparisons.
type ContentType struct {
	Raw     string
	Essence string // "type/subtype", lower case, no parameters
}

// ParseContentType validates a Content-Type header value.
func ParseContentType(v string) (ContentType, error) {
	v = strings.TrimSpace(v)
	mt, _, err := mime.ParseMediaType(v)
	if err != nil || strings.Count(mt, "/") != 1 || strings.HasPrefix(mt, "/") || strings.HasSuffix(mt, "/") {
		return ContentType{}, badRequest("invalid Content-Type %q", v)
	}
	return ContentType{Raw: v, Essence: mt}, nil
}

// SameContentType reports whether two content types name the same media
// type. Comparison ignores case and parameters (§9).
func SameContentType(a, b string) bool {
	return Essence(a) == Essence(b)
}

// Essence returns the lower-cased "type/subtype" of a content type, or the
// lower-cased value itself if it does not parse.
func Essence(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// IsJSON reports whether a content type selects JSON mode (§9.1).
func IsJSON(ct string) bool { return Essence(ct) == "application/json" }

// IsTextual reports whether SSE carries the stream's bytes as text (text/*
// and application/json); everything else is base64-encoded (§5.8).
func IsTextual(ct string) bool {
	e, _, err := mime.ParseMediaType(ct)
	return err == nil && (strings.HasPrefix(e, "text/") && len(e) > len("text/") || e == "application/json")
}
