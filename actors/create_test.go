package actors

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

func TestStartRequiresStore(t *testing.T) {
	if _, err := Start(Config{}); err == nil {
		t.Fatal("Start without a Store succeeded")
	}
}

func TestCreateThenIdenticalCreateExisted(t *testing.T) {
	e := newEnv(t)
	req := CreateRequest{ContentType: ctText, Records: recs("hello ", "world")}
	r := e.create("/s", req)
	if r.Outcome != Created || r.NextOffset != 11 || r.Closed {
		t.Fatalf("first create = %+v, want Created at 11, open", r)
	}
	if r.Snapshot == nil || !r.Snapshot.Exists || r.Snapshot.Tail != 11 || r.Snapshot.ID == 0 {
		t.Fatalf("first create snapshot = %+v", r.Snapshot)
	}
	r2 := e.create("/s", req)
	if r2.Outcome != Existed || r2.NextOffset != 11 || r2.Closed {
		t.Fatalf("second create = %+v, want Existed at 11", r2)
	}
	if r2.Snapshot == nil || r2.Snapshot.ID != r.Snapshot.ID {
		t.Fatalf("Existed snapshot %+v does not describe the created stream %+v", r2.Snapshot, r.Snapshot)
	}
	// The initial records are written once, not again by the idempotent PUT.
	if got, _ := e.readAll("/s"); string(got) != "hello world" {
		t.Fatalf("stream holds %q, want %q", got, "hello world")
	}
}

func TestCreateConfigComparison(t *testing.T) {
	expA := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	expB := expA.Add(time.Second)
	ttl := func(s int) protocol.Expiry { return protocol.Expiry{HasTTL: true, TTL: time.Duration(s) * time.Second} }
	at := func(t time.Time) protocol.Expiry { return protocol.Expiry{ExpiresAt: t} }

	tests := []struct {
		name        string
		first, then CreateRequest
		wantErr     error
	}{
		{"identical plain", CreateRequest{ContentType: ctText}, CreateRequest{ContentType: ctText}, nil},
		{"content type case-insensitive", CreateRequest{ContentType: "text/plain"}, CreateRequest{ContentType: "TEXT/Plain"}, nil},
		{"content type parameters ignored", CreateRequest{ContentType: "text/plain; charset=utf-8"}, CreateRequest{ContentType: "text/plain"}, nil},
		{"different content type", CreateRequest{ContentType: ctText}, CreateRequest{ContentType: ctJSON}, ErrConfigMismatch},
		{"same ttl", CreateRequest{ContentType: ctText, Expiry: ttl(60)}, CreateRequest{ContentType: ctText, Expiry: ttl(60)}, nil},
		{"different ttl", CreateRequest{ContentType: ctText, Expiry: ttl(60)}, CreateRequest{ContentType: ctText, Expiry: ttl(61)}, ErrConfigMismatch},
		{"ttl added", CreateRequest{ContentType: ctText}, CreateRequest{ContentType: ctText, Expiry: ttl(60)}, ErrConfigMismatch},
		{"ttl dropped", CreateRequest{ContentType: ctText, Expiry: ttl(60)}, CreateRequest{ContentType: ctText}, ErrConfigMismatch},
		{"same expires-at", CreateRequest{ContentType: ctText, Expiry: at(expA)}, CreateRequest{ContentType: ctText, Expiry: at(expA)}, nil},
		{"same expires-at other zone", CreateRequest{ContentType: ctText, Expiry: at(expA)}, CreateRequest{ContentType: ctText, Expiry: at(expA.In(time.FixedZone("x", 3600)))}, nil},
		{"different expires-at", CreateRequest{ContentType: ctText, Expiry: at(expA)}, CreateRequest{ContentType: ctText, Expiry: at(expB)}, ErrConfigMismatch},
		{"ttl vs expires-at", CreateRequest{ContentType: ctText, Expiry: ttl(60)}, CreateRequest{ContentType: ctText, Expiry: at(expA)}, ErrConfigMismatch},
		{"open then closed", CreateRequest{ContentType: ctText}, CreateRequest{ContentType: ctText, Closed: true}, ErrConfigMismatch},
		{"closed then open", CreateRequest{ContentType: ctText, Closed: true}, CreateRequest{ContentType: ctText}, ErrConfigMismatch},
		{"closed then closed", CreateRequest{ContentType: ctText, Closed: true}, CreateRequest{ContentType: ctText, Closed: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fake clock keeps the Expires-At cases far from expiry.
			clk := newFakeClock()
			e := newEnv(t, func(c *Config) { c.Now = clk.Now })
			first := e.create("/s", tc.first)
			if first.Outcome != Created {
				t.Fatalf("first create = %+v", first)
			}
			r, err := e.s.Create(opCtx(t), "/s", tc.then)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(r.Err, tc.wantErr) {
					t.Fatalf("second create: err %v (Result.Err %v), want %v", err, r.Err, tc.wantErr)
				}
				// The mismatch must leave the stream as it was.
				_, snap := e.open("/s")
				if snap.ID != first.Snapshot.ID || snap.ContentType != tc.first.ContentType || snap.Closed != tc.first.Closed || snap.Expiry.HasTTL != tc.first.Expiry.HasTTL {
					t.Fatalf("stream changed by a rejected create: %+v", snap)
				}
				return
			}
			if err != nil || r.Outcome != Existed {
				t.Fatalf("second create = %+v, %v; want Existed", r, err)
			}
			if r.Closed != tc.first.Closed {
				t.Fatalf("Existed.Closed = %v, want %v", r.Closed, tc.first.Closed)
			}
		})
	}
}

func TestCreateInitialRecords(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		records []string
		want    uint64
	}{
		{"empty", ctText, nil, 0},
		{"one record", ctText, []string{"abc"}, 3},
		{"binary", ctBinary, []string{"\x00\x01\x02\x03\xff"}, 5},
		{"json messages", ctJSON, []string{`{"a":1}`, `[2]`, `"x"`}, 7 + 3 + 3},
		{"empty record", ctText, []string{""}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.create("/s", CreateRequest{ContentType: tc.ct, Records: recs(tc.records...)})
			if r.Outcome != Created || r.NextOffset != tc.want {
				t.Fatalf("create = %+v, want Created at %d", r, tc.want)
			}
			got, snap := e.readAll("/s")
			var want []byte
			for _, rec := range tc.records {
				want = append(want, rec...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("stream holds %q, want %q", got, want)
			}
			if snap.ContentType != tc.ct || snap.JSON != (tc.ct == ctJSON) || snap.Tail != tc.want {
				t.Fatalf("snapshot = %+v", snap)
			}
			// Appends continue right after the initial content.
			ar := e.append("/s", AppendRequest{ContentType: tc.ct, Records: recs(`"y"`)})
			if ar.NextOffset != tc.want+3 {
				t.Fatalf("append after initial content: NextOffset %d, want %d", ar.NextOffset, tc.want+3)
			}
		})
	}
}

func TestCreateJSONMessagesAreRecords(t *testing.T) {
	e := newEnv(t)
	e.create("/j", CreateRequest{ContentType: ctJSON, Records: recs(`{"a":1}`, `2`)})
	e.append("/j", AppendRequest{ContentType: ctJSON, Records: recs(`"three"`)})
	msgs := e.readMessages("/j")
	want := []string{`{"a":1}`, `2`, `"three"`}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages %q, want %q", len(msgs), msgs, want)
	}
	for i := range want {
		if string(msgs[i]) != want[i] {
			t.Fatalf("message %d = %q, want %q", i, msgs[i], want[i])
		}
	}
}

func TestCreateClosed(t *testing.T) {
	e := newEnv(t)
	r := e.create("/c", CreateRequest{ContentType: ctText, Closed: true, Records: recs("final")})
	if r.Outcome != Created || !r.Closed || r.NextOffset != 5 || !r.Snapshot.Closed {
		t.Fatalf("create closed = %+v (snapshot %+v)", r, r.Snapshot)
	}
	_, snap := e.open("/c")
	if !snap.Closed || snap.Tail != 5 {
		t.Fatalf("snapshot = %+v, want closed at 5", snap)
	}
	_, err := e.s.Append(opCtx(t), "/c", AppendRequest{ContentType: ctText, Records: recs("more")})
	var ce *ClosedError
	if !errors.As(err, &ce) || ce.Tail != 5 || !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("append to created-closed stream: %v, want *ClosedError{Tail: 5}", err)
	}
	cr := e.append("/c", AppendRequest{Close: true})
	if cr.Outcome != AlreadyClosed || !cr.Closed || cr.NextOffset != 5 {
		t.Fatalf("close-only on created-closed stream = %+v", cr)
	}
	// An empty, closed stream is valid too.
	er := e.create("/empty", CreateRequest{ContentType: ctText, Closed: true})
	if er.Outcome != Created || !er.Closed || er.NextOffset != 0 {
		t.Fatalf("create empty closed = %+v", er)
	}
}

func TestCreateDistinctPathsAreIndependent(t *testing.T) {
	e := newEnv(t)
	a := e.createText("/a", "aaa")
	b := e.createText("/a/b", "b")
	if a.Snapshot.ID == b.Snapshot.ID {
		t.Fatalf("two streams share id %d", a.Snapshot.ID)
	}
	e.appendText("/a", "AA")
	if got, _ := e.readAll("/a/b"); string(got) != "b" {
		t.Fatalf("/a/b = %q", got)
	}
	if got, _ := e.readAll("/a"); string(got) != "aaaAA" {
		t.Fatalf("/a = %q", got)
	}
}
