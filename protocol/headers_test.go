package protocol

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseExpiryTTL(t *testing.T) {
	valid := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"1", time.Second},
		{"60", time.Minute},
		{"3600", time.Hour},
		{"86400", 24 * time.Hour},
		{strconv.Itoa(maxTTLSeconds), maxTTLSeconds * time.Second},
	}
	for _, tc := range valid {
		e, err := ParseExpiry(tc.in, "")
		if err != nil {
			t.Errorf("ParseExpiry(%q, \"\"): %v", tc.in, err)
			continue
		}
		if !e.HasTTL || e.TTL != tc.want || !e.ExpiresAt.IsZero() {
			t.Errorf("ParseExpiry(%q, \"\") = %+v; want HasTTL, TTL %v, no ExpiresAt", tc.in, e, tc.want)
		}
	}

	invalid := []string{
		"+3600", "03600", "3600.0", "3.6e3", // the spec's own examples
		"-1", "-0", "00", "0x10", "1_000", "1,000", "3600s", "1h",
		" 3600", "3600 ", "36 00", "\t1",
		"٣", "３６００", // non-ASCII digits
		strconv.Itoa(maxTTLSeconds + 1),
		"18446744073709551615", "18446744073709551616", "99999999999999999999999",
		strings.Repeat("9", 400),
	}
	for _, in := range invalid {
		e, err := ParseExpiry(in, "")
		if !errors.Is(err, ErrBadRequest) || !IsBadRequest(err) {
			t.Errorf("ParseExpiry(%q, \"\") = %+v, %v; want an error wrapping ErrBadRequest", in, e, err)
		}
		if errors.Is(err, ErrTTLAndExpiresAt) {
			t.Errorf("ParseExpiry(%q, \"\") reported both headers set", in)
		}
	}
}

func TestParseExpiryNeither(t *testing.T) {
	e, err := ParseExpiry("", "")
	if err != nil || e != (Expiry{}) {
		t.Fatalf("ParseExpiry(\"\", \"\") = %+v, %v; want zero Expiry", e, err)
	}
}

func TestParseExpiryExpiresAt(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	valid := []struct {
		in   string
		want time.Time
	}{
		{"2030-01-02T03:04:05Z", at},
		{"2030-01-02T03:04:05.5Z", at.Add(500 * time.Millisecond)},
		{"2030-01-02T03:04:05.123456789Z", at.Add(123456789)},
		{"2030-01-02T05:04:05+02:00", at},
		{"2030-01-01T22:04:05-05:00", at},
		{"2030-01-02T08:34:05+05:30", at},
		{"2030-01-02T03:04:05+00:00", at},
		{"2030-01-02T03:04:05-00:00", at},
		{"1999-12-31T23:59:59Z", time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)}, // past deadlines parse; expiry is policy elsewhere
		{"2028-02-29T00:00:00Z", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2262-04-11T23:47:16Z", time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC)}, // the latest accepted second
		{"1000-01-01T00:00:00Z", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)},     // long expired; never due late
	}
	for _, tc := range valid {
		e, err := ParseExpiry("", tc.in)
		if err != nil {
			t.Errorf("ParseExpiry(\"\", %q): %v", tc.in, err)
			continue
		}
		if !e.ExpiresAt.Equal(tc.want) || e.HasTTL || e.TTL != 0 {
			t.Errorf("ParseExpiry(\"\", %q) = %+v; want ExpiresAt %v only", tc.in, e, tc.want)
		}
		// Stored and echoed in UTC whatever offset the client used.
		if e.ExpiresAt.Location() != time.UTC {
			t.Errorf("ParseExpiry(\"\", %q).ExpiresAt in %v; want UTC", tc.in, e.ExpiresAt.Location())
		}
	}

	invalid := []string{
		"2030-01-02",
		"2030-01-02T03:04:05",      // no offset
		"2030-01-02 03:04:05Z",     // space separator
		"2030-01-02T03:04:05+0200", // offset without colon
		"2030-01-02T03:04Z",        // no seconds
		"2030-13-02T03:04:05Z",     // month 13
		"2030-02-30T03:04:05Z",     // no such day
		"2029-02-29T00:00:00Z",     // not a leap year
		"2030-01-02T25:04:05Z",     // hour 25
		"2030-01-02T03:60:05Z",     // minute 60
		"30-01-02T03:04:05Z",
		"tomorrow",
		"1893553445", // a Unix timestamp
		"Wed, 02 Jan 2030 03:04:05 GMT",
		" 2030-01-02T03:04:05Z",
		"2030-01-02T03:04:05Z ",
		"2030-01-02T03:04:05ZZ",
		"2262-04-11T23:47:17Z", // past what storage can order (int64 Unix nanoseconds)
		"3000-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z",
	}
	for _, in := range invalid {
		e, err := ParseExpiry("", in)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseExpiry(\"\", %q) = %+v, %v; want an error wrapping ErrBadRequest", in, e, err)
		}
	}
}

func TestParseExpiryBothSet(t *testing.T) {
	tests := []struct{ ttl, at string }{
		{"3600", "2030-01-02T03:04:05Z"},
		{"0", "2030-01-02T03:04:05+02:00"},
		// Both present is the error even when either value is also malformed.
		{"-1", "2030-01-02T03:04:05Z"},
		{"3600", "not a time"},
	}
	for _, tc := range tests {
		e, err := ParseExpiry(tc.ttl, tc.at)
		if !errors.Is(err, ErrTTLAndExpiresAt) || !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseExpiry(%q, %q) = %+v, %v; want ErrTTLAndExpiresAt", tc.ttl, tc.at, e, err)
		}
		if e != (Expiry{}) {
			t.Errorf("ParseExpiry(%q, %q) returned %+v with its error; want zero Expiry", tc.ttl, tc.at, e)
		}
	}
}

func TestParseProducerNone(t *testing.T) {
	// Values without their presence flags mean the headers were absent.
	for _, v := range [][3]string{{"", "", ""}, {"w", "1", "2"}} {
		p, err := ParseProducer(v[0], v[1], v[2], false, false, false)
		if p != nil || err != nil {
			t.Errorf("ParseProducer(%q, none set) = %+v, %v; want nil, nil", v, p, err)
		}
	}
}

func TestParseProducerPartial(t *testing.T) {
	for mask := 1; mask < 7; mask++ {
		idSet, epochSet, seqSet := mask&1 != 0, mask&2 != 0, mask&4 != 0
		p, err := ParseProducer("w", "1", "2", idSet, epochSet, seqSet)
		if !errors.Is(err, ErrPartialProducer) || !errors.Is(err, ErrBadRequest) || p != nil {
			t.Errorf("ParseProducer(set id=%v epoch=%v seq=%v) = %+v, %v; want ErrPartialProducer", idSet, epochSet, seqSet, p, err)
		}
	}
	// An empty id header still counts as sent: the request is partial, not empty-id.
	if _, err := ParseProducer("", "", "", true, false, false); !errors.Is(err, ErrPartialProducer) {
		t.Errorf("only an empty Producer-Id: %v; want ErrPartialProducer", err)
	}
}

func TestParseProducer(t *testing.T) {
	const maxSafe = "9007199254740991" // 2^53-1
	valid := []struct {
		id, epoch, seq string
		want           Producer
	}{
		{"w", "0", "0", Producer{"w", 0, 0}},
		{"order-service-1", "3", "17", Producer{"order-service-1", 3, 17}},
		{"550e8400-e29b-41d4-a716-446655440000", "1", "0", Producer{"550e8400-e29b-41d4-a716-446655440000", 1, 0}},
		{"w", maxSafe, maxSafe, Producer{"w", MaxSafeInteger, MaxSafeInteger}},
		{"w", "10", "100", Producer{"w", 10, 100}},
		{" spaced id ", "1", "1", Producer{" spaced id ", 1, 1}},
		{strings.Repeat("i", 1024), "1", "1", Producer{strings.Repeat("i", 1024), 1, 1}},
	}
	for _, tc := range valid {
		p, err := ParseProducer(tc.id, tc.epoch, tc.seq, true, true, true)
		if err != nil {
			t.Errorf("ParseProducer(%q, %q, %q): %v", tc.id, tc.epoch, tc.seq, err)
			continue
		}
		if p == nil || *p != tc.want {
			t.Errorf("ParseProducer(%q, %q, %q) = %+v; want %+v", tc.id, tc.epoch, tc.seq, p, tc.want)
		}
	}
	if MaxSafeInteger != 1<<53-1 {
		t.Fatalf("MaxSafeInteger = %d; want 2^53-1", MaxSafeInteger)
	}

	badNumbers := []string{
		"", "-1", "-0", "+1", "01", "00", "1.0", "1e3", "0x1", " 1", "1 ", "abc", "1a",
		"9007199254740992", // 2^53
		"9007199254740993",
		"18446744073709551615", "18446744073709551616", strings.Repeat("9", 100),
	}
	for _, bad := range badNumbers {
		for _, c := range []struct{ field, epoch, seq string }{
			{"epoch", bad, "0"},
			{"seq", "0", bad},
		} {
			p, err := ParseProducer("w", c.epoch, c.seq, true, true, true)
			if !errors.Is(err, ErrBadRequest) || p != nil {
				t.Errorf("ParseProducer with %s %q = %+v, %v; want an error wrapping ErrBadRequest", c.field, bad, p, err)
			}
			if errors.Is(err, ErrPartialProducer) {
				t.Errorf("ParseProducer with %s %q reported partial headers", c.field, bad)
			}
		}
	}

	for _, id := range []string{""} {
		p, err := ParseProducer(id, "0", "0", true, true, true)
		if !errors.Is(err, ErrBadRequest) || errors.Is(err, ErrPartialProducer) || p != nil {
			t.Errorf("ParseProducer(id of %d bytes) = %+v, %v; want a bad-request error", len(id), p, err)
		}
	}
}

func TestIsTrue(t *testing.T) {
	for _, v := range []string{"true", "TRUE", "True", "tRuE"} {
		if !IsTrue(v) {
			t.Errorf("IsTrue(%q) = false; want true", v)
		}
	}
	// §4.1: anything else is as if the header were absent.
	for _, v := range []string{"false", "FALSE", "yes", "1", "on", "t", "", "truee", "tru", "true,true", "true;", `"true"`, "ttrue"} {
		if IsTrue(v) {
			t.Errorf("IsTrue(%q) = true; want false", v)
		}
	}
}

func TestParseContentType(t *testing.T) {
	valid := []struct{ in, raw, essence string }{
		{"application/json", "application/json", "application/json"},
		{"Application/JSON", "Application/JSON", "application/json"},
		{"application/json; charset=utf-8", "application/json; charset=utf-8", "application/json"},
		{"TEXT/Plain;Charset=UTF-8", "TEXT/Plain;Charset=UTF-8", "text/plain"},
		{"text/plain; charset=\"utf-8\"", "text/plain; charset=\"utf-8\"", "text/plain"},
		{"  application/octet-stream  ", "application/octet-stream", "application/octet-stream"},
		{"application/vnd.api+json", "application/vnd.api+json", "application/vnd.api+json"},
		{"application/x-protobuf", "application/x-protobuf", "application/x-protobuf"},
	}
	for _, tc := range valid {
		ct, err := ParseContentType(tc.in)
		if err != nil {
			t.Errorf("ParseContentType(%q): %v", tc.in, err)
			continue
		}
		if ct.Raw != tc.raw || ct.Essence != tc.essence {
			t.Errorf("ParseContentType(%q) = %+v; want Raw %q, Essence %q", tc.in, ct, tc.raw, tc.essence)
		}
	}

	invalid := []string{
		"", "   ", "garbage", "text", "text/", "/plain", "/", "text/plain/extra",
		"text /plain", "text/pl ain", "a/b c", "application/json; charset",
		"; charset=utf-8", "text/plain; charset=utf-8; charset=ascii",
	}
	for _, in := range invalid {
		ct, err := ParseContentType(in)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseContentType(%q) = %+v, %v; want an error wrapping ErrBadRequest", in, ct, err)
		}
		if ct != (ContentType{}) {
			t.Errorf("ParseContentType(%q) returned %+v with its error", in, ct)
		}
	}
}

func TestSameContentType(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"application/json", "application/json", true},
		{"application/json", "APPLICATION/JSON", true},
		{"application/json", "application/json; charset=utf-8", true},
		{"text/plain; charset=utf-8", "TEXT/PLAIN;charset=ISO-8859-1", true},
		{" text/plain ", "text/plain", true},
		{"text/plain", "text/html", false},
		{"application/json", "application/jsonl", false},
		{"application/json", "text/json", false},
		{"application/json", "application/ld+json", false},
		{"application/json", "", false},
		{"application/json", "garbage", false},
		{"text/plain", "text/", false},
		{"text/plain", "/plain", false},
	}
	for _, tc := range tests {
		if got := SameContentType(tc.a, tc.b); got != tc.same {
			t.Errorf("SameContentType(%q, %q) = %v; want %v", tc.a, tc.b, got, tc.same)
		}
		if got := SameContentType(tc.b, tc.a); got != tc.same {
			t.Errorf("SameContentType(%q, %q) = %v; want %v (symmetry)", tc.b, tc.a, got, tc.same)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for _, ct := range []string{"application/json", "Application/JSON", "application/json; charset=utf-8", "APPLICATION/JSON;charset=UTF-8", " application/json "} {
		if !IsJSON(ct) {
			t.Errorf("IsJSON(%q) = false; want true", ct)
		}
	}
	for _, ct := range []string{"", "garbage", "text/", "/plain", "/json", "application/", "json", "text/json", "application/jsonl", "application/x-ndjson", "application/ndjson", "application/ld+json", "application/json-patch+json", "application/octet-stream", "text/plain"} {
		if IsJSON(ct) {
			t.Errorf("IsJSON(%q) = true; want false", ct)
		}
	}
}

func TestIsTextual(t *testing.T) {
	for _, ct := range []string{"text/plain", "TEXT/HTML; charset=utf-8", "text/event-stream", "text/csv", "application/json", "Application/Json;charset=utf-8"} {
		if !IsTextual(ct) {
			t.Errorf("IsTextual(%q) = false; want true", ct)
		}
	}
	// §9: only text/* and application/json travel as text over SSE;
	// everything else, including malformed values, is base64.
	for _, ct := range []string{"application/octet-stream", "application/ndjson", "application/x-protobuf", "image/png", "application/ld+json", "application/jsonl", "textual/plain", "text", "", "garbage", "/plain", "text/"} {
		if IsTextual(ct) {
			t.Errorf("IsTextual(%q) = true; want false", ct)
		}
	}
}

func TestEssence(t *testing.T) {
	tests := []struct{ in, want string }{
		{"application/json", "application/json"},
		{"Text/Plain; charset=utf-8", "text/plain"},
		{"  IMAGE/PNG  ", "image/png"},
		{"Garbage", "garbage"},
	}
	for _, tc := range tests {
		if got := Essence(tc.in); got != tc.want {
			t.Errorf("Essence(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultContentTypeIsValid(t *testing.T) {
	ct, err := ParseContentType(DefaultContentType)
	if err != nil || ct.Essence != "application/octet-stream" || IsJSON(DefaultContentType) || IsTextual(DefaultContentType) {
		t.Fatalf("DefaultContentType %q: %+v, %v", DefaultContentType, ct, err)
	}
}
