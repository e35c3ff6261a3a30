package protocol

import (
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// canonicalUint is the documented shape of Stream-TTL, Producer-Epoch and
// Producer-Seq: a decimal without sign, leading zeros, fraction or exponent.
var canonicalUint = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// referenceUint is a slow, obviously correct parseCanonicalUint.
func referenceUint(v string, max uint64) (uint64, bool) {
	if !canonicalUint.MatchString(v) {
		return 0, false
	}
	n, ok := new(big.Int).SetString(v, 10)
	if !ok || n.Cmp(new(big.Int).SetUint64(max)) > 0 {
		return 0, false
	}
	return n.Uint64(), true
}

// FuzzParseExpiry checks Stream-TTL and Stream-Expires-At validation: it
// never panics; both headers set is always ErrTTLAndExpiresAt; every error
// wraps ErrBadRequest and comes with a zero Expiry; an accepted TTL is a
// canonical decimal within [0, maxTTLSeconds] seconds that HEAD echoes back
// unchanged; an accepted Expires-At is present (non-zero), in UTC, not after
// MaxExpiresAt, and re-parses to the same instant from the form HEAD echoes.
func FuzzParseExpiry(f *testing.F) {
	for _, tc := range [][2]string{
		{"", ""},
		// TTLs.
		{"0", ""}, {"1", ""}, {"60", ""}, {"3600", ""}, {"86400", ""},
		{strconv.Itoa(maxTTLSeconds), ""}, {strconv.Itoa(maxTTLSeconds + 1), ""},
		{"+3600", ""}, {"03600", ""}, {"3600.0", ""}, {"3.6e3", ""}, {"-1", ""}, {"-0", ""}, {"00", ""},
		{"0x10", ""}, {"1_000", ""}, {"1,000", ""}, {"1h", ""}, {" 3600", ""}, {"3600 ", ""}, {"\t1", ""},
		{"٣", ""}, {"３６００", ""}, {"18446744073709551615", ""}, {"18446744073709551616", ""},
		{"99999999999999999999999", ""}, {"\xff", ""},
		// Expires-At.
		{"", "2030-01-02T03:04:05Z"}, {"", "2030-01-02T03:04:05.123456789Z"}, {"", "2030-01-02T05:04:05+02:00"},
		{"", "2030-01-01T22:04:05-05:00"}, {"", "2030-01-02T08:34:05+05:30"}, {"", "2030-01-02T03:04:05-00:00"},
		{"", "2028-02-29T00:00:00Z"}, {"", "2029-02-29T00:00:00Z"}, {"", "2030-02-30T03:04:05Z"},
		{"", "1999-12-31T23:59:59Z"}, {"", "1970-01-01T00:00:00Z"}, {"", "1969-12-31T23:59:59.999999999Z"},
		{"", "1677-09-21T00:12:43.145224192Z"}, {"", "1000-01-01T00:00:00Z"},
		{"", "0001-01-01T00:00:00Z"}, {"", "0001-01-01T00:00:00.000000001Z"}, {"", "0001-01-01T01:00:00+01:00"},
		{"", "0000-12-31T23:00:00-01:00"}, {"", "0000-01-01T00:00:00Z"},
		{"", "2262-04-11T23:47:16.854775807Z"}, {"", "2262-04-11T23:47:16.854775808Z"},
		{"", "2262-04-11T23:47:17Z"}, {"", "2262-04-12T01:47:16+02:00"}, {"", "3000-01-01T00:00:00Z"},
		{"", "9999-12-31T23:59:59Z"}, {"", "9999-12-31T23:59:59-23:59"},
		{"", "2030-01-02"}, {"", "2030-01-02T03:04:05"}, {"", "2030-01-02 03:04:05Z"}, {"", "2030-01-02T03:04:05+0200"},
		{"", "2030-01-02T03:04Z"}, {"", "2030-13-02T03:04:05Z"}, {"", "2030-01-02T25:04:05Z"},
		{"", "2030-01-02T03:04:60Z"}, {"", "2030-01-02t03:04:05z"}, {"", "2030-01-02T03:04:05,5Z"},
		{"", "tomorrow"}, {"", "1893553445"}, {"", "Wed, 02 Jan 2030 03:04:05 GMT"},
		{"", " 2030-01-02T03:04:05Z"}, {"", "2030-01-02T03:04:05ZZ"}, {"", "+2030-01-02T03:04:05Z"},
		// Both.
		{"3600", "2030-01-02T03:04:05Z"}, {"-1", "2030-01-02T03:04:05Z"}, {"3600", "not a time"},
	} {
		f.Add(tc[0], tc[1])
	}

	f.Fuzz(func(t *testing.T, ttl, expiresAt string) {
		e, err := ParseExpiry(ttl, expiresAt)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) || !IsBadRequest(err) {
				t.Fatalf("ParseExpiry(%q, %q): error %v does not wrap ErrBadRequest", ttl, expiresAt, err)
			}
			if e != (Expiry{}) {
				t.Fatalf("ParseExpiry(%q, %q) = %+v with error %v; want a zero Expiry", ttl, expiresAt, e, err)
			}
		}
		if ttl != "" && expiresAt != "" {
			if !errors.Is(err, ErrTTLAndExpiresAt) {
				t.Fatalf("ParseExpiry(%q, %q) = %+v, %v; want ErrTTLAndExpiresAt", ttl, expiresAt, e, err)
			}
			return
		}
		if errors.Is(err, ErrTTLAndExpiresAt) {
			t.Fatalf("ParseExpiry(%q, %q) reported both headers set", ttl, expiresAt)
		}
		switch {
		case ttl == "" && expiresAt == "":
			if err != nil || e != (Expiry{}) {
				t.Fatalf("ParseExpiry(\"\", \"\") = %+v, %v; want a zero Expiry", e, err)
			}

		case ttl != "":
			want, ok := referenceUint(ttl, maxTTLSeconds)
			if ok != (err == nil) {
				t.Fatalf("ParseExpiry(%q, \"\") = %+v, %v; want accepted=%v", ttl, e, err, ok)
			}
			if err != nil {
				return
			}
			if !e.HasTTL || !e.ExpiresAt.IsZero() {
				t.Fatalf("ParseExpiry(%q, \"\") = %+v; want a TTL only", ttl, e)
			}
			if e.TTL < 0 || e.TTL > maxTTLSeconds*time.Second || e.TTL%time.Second != 0 || uint64(e.TTL/time.Second) != want {
				t.Fatalf("ParseExpiry(%q, \"\").TTL = %v; want %d s within [0, %d s]", ttl, e.TTL, want, maxTTLSeconds)
			}
			// HEAD echoes the TTL as whole seconds: the same text.
			if echo := strconv.FormatInt(int64(e.TTL/time.Second), 10); echo != ttl {
				t.Fatalf("TTL %q echoes as %q", ttl, echo)
			}
			// A deadline computed from any representable last access does
			// not overflow.
			last := MaxExpiresAt().Add(-e.TTL)
			if d, ok := e.Deadline(last); !ok || d.Before(last) {
				t.Fatalf("TTL %q: deadline from %v is %v, %v", ttl, last, d, ok)
			}

		default: // Expires-At only
			if err != nil {
				// An RFC 3339 instant is refused only outside the range a
				// deadline can take: after MaxExpiresAt, or not after the
				// zero time (which means "no deadline").
				if at, perr := time.Parse(time.RFC3339Nano, expiresAt); perr == nil && at.After(time.Time{}) && !at.After(MaxExpiresAt()) {
					t.Fatalf("ParseExpiry(\"\", %q) refused the representable instant %v: %v", expiresAt, at, err)
				}
				return
			}
			if e.HasTTL || e.TTL != 0 {
				t.Fatalf("ParseExpiry(\"\", %q) = %+v; want no TTL", expiresAt, e)
			}
			// The header was sent and accepted, so the stream must expire:
			// a zero ExpiresAt would mean "no deadline".
			if e.ExpiresAt.IsZero() || !e.ExpiresAt.After(time.Time{}) {
				t.Fatalf("ParseExpiry(\"\", %q) accepted the header but set no deadline (%v)", expiresAt, e.ExpiresAt)
			}
			// Storage keeps the deadline as RFC 3339 JSON.
			if _, err := e.ExpiresAt.MarshalJSON(); err != nil {
				t.Fatalf("ParseExpiry(\"\", %q).ExpiresAt = %v cannot be stored: %v", expiresAt, e.ExpiresAt, err)
			}
			if e.ExpiresAt.After(MaxExpiresAt()) {
				t.Fatalf("ParseExpiry(\"\", %q).ExpiresAt = %v, after MaxExpiresAt %v", expiresAt, e.ExpiresAt, MaxExpiresAt())
			}
			if e.ExpiresAt.Location() != time.UTC {
				t.Fatalf("ParseExpiry(\"\", %q).ExpiresAt in %v; want UTC", expiresAt, e.ExpiresAt.Location())
			}
			if d, ok := e.Deadline(time.Now()); !ok || !d.Equal(e.ExpiresAt) {
				t.Fatalf("Expires-At %q: deadline %v, %v", expiresAt, d, ok)
			}
			// HEAD echoes the deadline in RFC 3339; a client may send it back.
			echo := e.ExpiresAt.Format(time.RFC3339Nano)
			again, err := ParseExpiry("", echo)
			if err != nil || !again.ExpiresAt.Equal(e.ExpiresAt) {
				t.Fatalf("Expires-At %q echoes as %q, which parses to %+v, %v", expiresAt, echo, again, err)
			}
		}
	})
}

// FuzzParseProducer checks the producer headers against a reference
// implementation of the documented rules: none present is (nil, nil); some
// but not all is ErrPartialProducer; otherwise the id must not be empty
// (its longest length is the server's setting, checked in httpapi) and
// epoch and seq canonical decimals within [0, 2^53-1]. An accepted
// producer carries exactly the values sent (the numbers echo back as sent)
// and every error wraps ErrBadRequest with a nil producer.
func FuzzParseProducer(f *testing.F) {
	const maxSafe = "9007199254740991"
	for _, tc := range []struct {
		id, epoch, seq string
		set            uint8
	}{
		{"", "", "", 0}, {"w", "1", "2", 0},
		{"w", "0", "0", 7}, {"order-service-1", "3", "17", 7}, {"550e8400-e29b-41d4-a716-446655440000", "1", "0", 7},
		{"w", maxSafe, maxSafe, 7}, {"w", "9007199254740992", "0", 7}, {"w", "0", "9007199254740992", 7},
		{" spaced id ", "1", "1", 7}, {strings.Repeat("i", 1024), "1", "1", 7}, {strings.Repeat("i", 1025), "1", "1", 7},
		{"", "0", "0", 7}, {"\xff\xfe", "0", "0", 7}, {"w", "-1", "0", 7}, {"w", "+1", "0", 7}, {"w", "01", "0", 7},
		{"w", "1.0", "0", 7}, {"w", "1e3", "0", 7}, {"w", "0x1", "0", 7}, {"w", " 1", "0", 7}, {"w", "", "0", 7},
		{"w", "18446744073709551616", "0", 7}, {"w", "0", "abc", 7},
		{"w", "1", "2", 1}, {"w", "1", "2", 3}, {"w", "1", "2", 5}, {"w", "1", "2", 6}, {"", "", "", 1},
	} {
		f.Add(tc.id, tc.epoch, tc.seq, tc.set)
	}

	f.Fuzz(func(t *testing.T, id, epoch, seq string, set uint8) {
		idSet, epochSet, seqSet := set&1 != 0, set&2 != 0, set&4 != 0
		p, err := ParseProducer(id, epoch, seq, idSet, epochSet, seqSet)
		if err != nil && (p != nil || !errors.Is(err, ErrBadRequest)) {
			t.Fatalf("ParseProducer(%q, %q, %q) = %+v, %v; want nil and an error wrapping ErrBadRequest", id, epoch, seq, p, err)
		}
		switch {
		case !idSet && !epochSet && !seqSet:
			if p != nil || err != nil {
				t.Fatalf("ParseProducer with no header = %+v, %v; want nil, nil", p, err)
			}
			return
		case !idSet || !epochSet || !seqSet:
			if !errors.Is(err, ErrPartialProducer) {
				t.Fatalf("ParseProducer with set=%03b = %+v, %v; want ErrPartialProducer", set&7, p, err)
			}
			return
		}
		if errors.Is(err, ErrPartialProducer) {
			t.Fatalf("ParseProducer(%q, %q, %q) with all headers reported them partial", id, epoch, seq)
		}
		e, eok := referenceUint(epoch, MaxSafeInteger)
		s, sok := referenceUint(seq, MaxSafeInteger)
		want := id != "" && eok && sok
		if want != (err == nil) {
			t.Fatalf("ParseProducer(%q, %q, %q) = %+v, %v; want accepted=%v", id, epoch, seq, p, err, want)
		}
		if err != nil {
			return
		}
		if p == nil || p.ID != id || p.Epoch != e || p.Seq != s {
			t.Fatalf("ParseProducer(%q, %q, %q) = %+v; want {%q %d %d}", id, epoch, seq, p, id, e, s)
		}
		if strconv.FormatUint(p.Epoch, 10) != epoch || strconv.FormatUint(p.Seq, 10) != seq {
			t.Fatalf("ParseProducer(%q, %q, %q) = %+v does not echo as sent", id, epoch, seq, p)
		}
	})
}

// FuzzContentType checks that ParseContentType, Essence, SameContentType,
// IsJSON and IsTextual agree. A value ParseContentType accepts has a
// lower-case "type/subtype" essence with both parts non-empty, which Essence
// gives for the raw value, the value as sent and the essence itself;
// re-parsing the raw value gives the same result; IsJSON and IsTextual
// follow from the essence. Whatever the value, IsJSON implies IsTextual and
// an accepted value, and SameContentType is reflexive and symmetric.
func FuzzContentType(f *testing.F) {
	for _, tc := range [][2]string{
		{"application/json", "application/json; charset=utf-8"},
		{"Application/JSON", "APPLICATION/JSON;charset=UTF-8"},
		{" application/json ", "application/json"},
		{"TEXT/Plain;Charset=UTF-8", "text/plain"},
		{"text/plain; charset=\"utf-8\"", "text/html"},
		{"  application/octet-stream  ", "application/octet-stream"},
		{"application/vnd.api+json", "application/json"},
		{"application/ld+json", "application/jsonl"},
		{"application/x-ndjson", "application/x-protobuf"},
		{"text/event-stream", "text/csv"},
		{"image/png", "textual/plain"},
		{"multipart/form-data; boundary=abc", "text/plain; format=flowed; delsp=yes"},
		{"text/plain; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", "text/plain; a*0=x; a*1=y"},
		{"", "   "}, {"garbage", "GARBAGE"}, {"text", "text/"}, {"/plain", "/"}, {"text/plain/extra", "a/b c"},
		{"text /plain", "text/pl ain"}, {"application/json; charset", "; charset=utf-8"},
		{"text/plain; charset=utf-8; charset=ascii", "text/plain;;"},
		{"application/json\x00", "application/json\n"}, {"\u00a0application/json", "application/json\u00a0"},
		{"text/plain; a=b\u00a0", "text/plain;\u00a0a=b"}, {"text/\u212a", "text/k"}, {"\xff/\xfe", "text/plain; a=\xff"},
		{"application/json; charset=\"unterminated", "text/plain; a=\"b\\\"c\""},
	} {
		f.Add(tc[0], tc[1])
	}

	f.Fuzz(func(t *testing.T, a, b string) {
		for _, v := range []string{a, b} {
			checkContentType(t, v)
		}
		if SameContentType(a, b) != SameContentType(b, a) {
			t.Fatalf("SameContentType(%q, %q) is not symmetric", a, b)
		}
		if SameContentType(a, b) != (Essence(a) == Essence(b)) {
			t.Fatalf("SameContentType(%q, %q) disagrees with Essence", a, b)
		}
		// Streams compare by essence: two accepted types are the same type
		// exactly when their parsed essences are equal.
		ca, erra := ParseContentType(a)
		cb, errb := ParseContentType(b)
		if erra == nil && errb == nil && SameContentType(ca.Raw, cb.Raw) != (ca.Essence == cb.Essence) {
			t.Fatalf("SameContentType(%q, %q) = %v but essences %q, %q", ca.Raw, cb.Raw, SameContentType(ca.Raw, cb.Raw), ca.Essence, cb.Essence)
		}
	})
}

func checkContentType(t *testing.T, v string) {
	t.Helper()
	if !SameContentType(v, v) {
		t.Fatalf("SameContentType(%q, itself) = false", v)
	}
	ct, err := ParseContentType(v)
	if IsJSON(v) && !IsTextual(v) {
		t.Fatalf("IsJSON(%q) but not IsTextual", v)
	}
	if IsJSON(v) && err != nil {
		t.Fatalf("IsJSON(%q) but ParseContentType refuses it: %v", v, err)
	}
	if err != nil {
		if !errors.Is(err, ErrBadRequest) || ct != (ContentType{}) {
			t.Fatalf("ParseContentType(%q) = %+v, %v; want a zero value and an error wrapping ErrBadRequest", v, ct, err)
		}
		if IsTextual(v) {
			t.Fatalf("IsTextual(%q) = true for a value ParseContentType refuses (%v)", v, err)
		}
		return
	}
	if ct.Raw != strings.TrimSpace(v) {
		t.Fatalf("ParseContentType(%q).Raw = %q; want the trimmed value", v, ct.Raw)
	}
	typ, sub, ok := strings.Cut(ct.Essence, "/")
	if !ok || typ == "" || sub == "" || strings.Contains(sub, "/") || strings.ToLower(ct.Essence) != ct.Essence {
		t.Fatalf("ParseContentType(%q).Essence = %q; want lower-case type/subtype", v, ct.Essence)
	}
	for _, s := range []string{v, ct.Raw, ct.Essence} {
		if got := Essence(s); got != ct.Essence {
			t.Fatalf("Essence(%q) = %q; ParseContentType(%q).Essence = %q", s, got, v, ct.Essence)
		}
	}
	again, err := ParseContentType(ct.Raw)
	if err != nil || again != ct {
		t.Fatalf("ParseContentType(%q) = %+v, %v; first parse of %q gave %+v", ct.Raw, again, err, v, ct)
	}
	if e, err := ParseContentType(ct.Essence); err != nil || e.Essence != ct.Essence {
		t.Fatalf("essence %q of %q does not parse as itself: %+v, %v", ct.Essence, v, e, err)
	}
	wantJSON := ct.Essence == "application/json"
	wantText := wantJSON || strings.HasPrefix(ct.Essence, "text/")
	for _, s := range []string{v, ct.Raw} {
		if IsJSON(s) != wantJSON || IsTextual(s) != wantText {
			t.Fatalf("essence %q: IsJSON(%q) = %v, IsTextual = %v; want %v, %v", ct.Essence, s, IsJSON(s), IsTextual(s), wantJSON, wantText)
		}
	}
}

// TestParseExpiryRefusesNoDeadline: an Expires-At at or before the zero
// time.Time was accepted and then read as "no deadline" (the stream never
// expired), or, from year 0 with a positive offset, landed in year -1 in UTC,
// which storage cannot encode (a 500 on PUT). Found by FuzzParseExpiry and
// FuzzServer.
func TestParseExpiryRefusesNoDeadline(t *testing.T) {
	for _, in := range []string{
		"0001-01-01T00:00:00Z",
		"0001-01-01T01:00:00+01:00",
		"0000-12-31T23:00:00-01:00",
		"0000-12-31T23:59:59.999999999Z",
		"0000-01-01T00:00:00Z",
		"0000-01-01T00:00:00+01:00",
	} {
		e, err := ParseExpiry("", in)
		if !errors.Is(err, ErrBadRequest) || e != (Expiry{}) {
			t.Errorf("ParseExpiry(\"\", %q) = %+v, %v; want a bad-request error", in, e, err)
		}
	}
	// The first instant after it is a (long past) deadline like any other.
	e, err := ParseExpiry("", "0001-01-01T00:00:00.000000001Z")
	if err != nil || !e.ExpiresAt.Equal(time.Time{}.Add(1)) {
		t.Errorf("ParseExpiry of the first nanosecond of year 1 = %+v, %v", e, err)
	}
	if _, ok := e.Deadline(time.Now()); !ok {
		t.Errorf("a deadline in year 1 does not expire")
	}
}
