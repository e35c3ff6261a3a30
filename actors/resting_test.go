package actors

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// TestRestingStateRoundTrip: what is kept of a passivated stream decodes to
// the state Store.Load would return, or is not kept at all.
func TestRestingStateRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.UTC)
	plus2 := time.FixedZone("", 2*3600)
	cases := []struct {
		name string
		st   *persistence.StreamState
		kept bool
	}{
		{name: "no stream", st: nil, kept: true},
		{name: "plain", kept: true, st: &persistence.StreamState{Tail: 300, Meta: persistence.Meta{
			ID: 7, ContentType: ctText, CreatedAt: created, NoProducers: true}}},
		{name: "segmented offsets", kept: true, st: &persistence.StreamState{Tail: 30, Meta: persistence.Meta{
			ID: 17, ContentType: ctText, CreatedAt: created, NoProducers: true, Segmented: true}}},
		{name: "json ttl renewed closed", kept: true, st: &persistence.StreamState{Tail: 12, Meta: persistence.Meta{
			ID: 8, ContentType: ctJSON, TTL: 90 * time.Second, HasTTL: true, CreatedAt: created,
			LastAccess: created.Add(time.Minute), Closed: true}}},
		{name: "expires-at keeps its zone", kept: true, st: &persistence.StreamState{Meta: persistence.Meta{
			ID: 9, ContentType: "application/x-custom; charset=utf-8", ExpiresAt: time.Date(2027, 1, 2, 3, 4, 5, 6, plus2), CreatedAt: created}}},
		{name: "producer table", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 10, ContentType: ctText, CreatedAt: created},
			Producers: map[string]persistence.ProducerState{"p": {Epoch: 1, LastSeq: 2}}}},
		{name: "stream-seq", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 11, ContentType: ctText, CreatedAt: created, LastSeq: "0005"}}},
		{name: "closed by a producer", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 12, ContentType: ctText, CreatedAt: created,
			Closed: true, ClosedBy: &persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 3}}}},
		{name: "expires-at beyond nanoseconds", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 13, ContentType: ctText, CreatedAt: created,
			ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}}},
		{name: "fork", kept: false, st: &persistence.StreamState{Tail: 5, Meta: persistence.Meta{ID: 15, ContentType: ctText, CreatedAt: created,
			Fork: &persistence.ForkInfo{SourcePath: "src", SourceID: 3, Base: 5, Chain: []persistence.Segment{{ID: 3, End: 5}}}}}},
		{name: "soft-deleted", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 16, ContentType: ctText, CreatedAt: created, SoftDeleted: true}}},
		// 0 stands for "no Expires-At": kept, this stream would never expire.
		{name: "expires-at at the Unix epoch", kept: false, st: &persistence.StreamState{Meta: persistence.Meta{ID: 14, ContentType: ctText, CreatedAt: created,
			ExpiresAt: time.Unix(0, 0).UTC()}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestingStates(1 << 20)
			r.put("/s", tc.st)
			got, ok := r.take("/s")
			if ok != tc.kept {
				t.Fatalf("kept = %v, want %v", ok, tc.kept)
			}
			if r.len() != 0 || r.used() != 0 {
				t.Fatalf("after take: %d entries, %d bytes", r.len(), r.used())
			}
			if !ok {
				return
			}
			if (got == nil) != (tc.st == nil) {
				t.Fatalf("got %+v, want %+v", got, tc.st)
			}
			if got == nil {
				return
			}
			want := *tc.st
			if got.Meta.ExpiresAt.Format(time.RFC3339Nano) != want.Meta.ExpiresAt.Format(time.RFC3339Nano) {
				t.Errorf("Expires-At formats as %s, want %s", got.Meta.ExpiresAt.Format(time.RFC3339Nano), want.Meta.ExpiresAt.Format(time.RFC3339Nano))
			}
			for _, tm := range []struct{ got, want time.Time }{
				{got.Meta.CreatedAt, want.Meta.CreatedAt}, {got.Meta.LastAccess, want.Meta.LastAccess}, {got.Meta.ExpiresAt, want.Meta.ExpiresAt},
			} {
				if !tm.got.Equal(tm.want) || tm.got.IsZero() != tm.want.IsZero() {
					t.Errorf("time %v, want %v", tm.got, tm.want)
				}
			}
			got.Meta.CreatedAt, got.Meta.LastAccess, got.Meta.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
			want.Meta.CreatedAt, want.Meta.LastAccess, want.Meta.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got %+v, want %+v", *got, want)
			}
		})
	}
}

// TestRestingStateCoversMeta fails when persistence.Meta gains a field,
// which restingState must then carry (or refuse to keep).
func TestRestingStateCoversMeta(t *testing.T) {
	var names []string
	for f := range reflect.TypeFor[persistence.Meta]().Fields() {
		names = append(names, f.Name)
	}
	const want = "ID ContentType TTL HasTTL ExpiresAt CreatedAt LastAccess Closed ClosedBy LastSeq NoProducers Fork SoftDeleted Segmented"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("persistence.Meta fields are now %q (were %q): update restingState's encode and decode", got, want)
	}
}

// TestRestingStateBudget: entries stay within the byte budget, evicting
// others to make room.
func TestRestingStateBudget(t *testing.T) {
	budget := int64(10*restingEntryBytes + restingEntryBytes/2)
	r := newRestingStates(budget)
	st := &persistence.StreamState{Meta: persistence.Meta{ID: 1, ContentType: ctText}}
	for i := range 100 {
		r.put(fmt.Sprintf("/s/%d", i), st)
		if r.used() > budget {
			t.Fatalf("after %d puts: %d bytes used, budget %d", i+1, r.used(), budget)
		}
	}
	if r.len() != 10 {
		t.Fatalf("%d entries kept, want 10", r.len())
	}
	kept := 0
	for i := range 100 {
		if got, ok := r.take(fmt.Sprintf("/s/%d", i)); ok {
			kept++
			if got == nil || got.Meta.ID != 1 {
				t.Fatalf("entry /s/%d = %+v", i, got)
			}
		}
	}
	if kept != 10 || r.len() != 0 {
		t.Fatalf("took %d entries, %d left", kept, r.len())
	}
	off := newRestingStates(0)
	off.put("/x", st)
	if off.len() != 0 {
		t.Fatal("a zero budget kept an entry")
	}
}

// TestPassivatedStreamsReactivateFromRestingState: a passivated stream's
// next actor takes the state its predecessor left instead of loading from
// Pebble, and serves exactly what it would have loaded.
func TestPassivatedStreamsReactivateFromRestingState(t *testing.T) {
	for _, budget := range []int64{0, -1} {
		t.Run(map[int64]string{0: "resting", -1: "disabled"}[budget], func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.IdleTimeout = 20 * time.Millisecond; c.RestingStateBytes = budget })
			e.create("/json", CreateRequest{ContentType: ctJSON, Records: recs(`1`), Expiry: protocol.Expiry{HasTTL: true, TTL: time.Hour}})
			e.create("/text", CreateRequest{ContentType: ctText, Records: recs("ab"), Closed: true})
			e.create("/gone", CreateRequest{ContentType: ctText})
			if err := e.s.Delete(opCtx(t), "/gone"); err != nil {
				t.Fatal(err)
			}
			e.create("/prod", CreateRequest{ContentType: ctText})
			e.append("/prod", AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("p", 1, 0)})
			paths := []string{"/json", "/text", "/gone", "/prod"}
			snapshot := func(path string) Snapshot {
				_, snap, err := e.s.Open(opCtx(t), path)
				if errors.Is(err, ErrNotFound) {
					return Snapshot{}
				}
				if err != nil {
					t.Fatalf("Open(%q): %v", path, err)
				}
				return *snap
			}
			before := map[string]Snapshot{}
			for _, p := range paths {
				before[p] = snapshot(p)
			}
			eventually(t, opTimeout, "actors to passivate", func() bool { return e.s.Stats().Live == 0 })
			loads := e.s.Stats()
			for _, p := range paths {
				if snap := snapshot(p); !reflect.DeepEqual(snap, before[p]) {
					t.Errorf("%s after reactivation: %+v, want %+v", p, snap, before[p])
				}
			}
			st := e.s.Stats()
			wantResting := int64(3) // all but /prod, whose producer table is not kept
			if budget < 0 {
				wantResting = 0
			}
			if got := st.RestingLoads - loads.RestingLoads; got != wantResting {
				t.Errorf("%d activations from resting state, want %d (stats %+v)", got, wantResting, st)
			}
			if got := st.StoreLoads - loads.StoreLoads; got != 4-wantResting {
				t.Errorf("%d activations from storage, want %d (stats %+v)", got, 4-wantResting, st)
			}
			// Writes after reactivation behave as after a load from storage.
			if r := e.append("/json", AppendRequest{ContentType: ctJSON, Records: recs(`2`)}); r.NextOffset <= before["/json"].Tail {
				t.Errorf("append after reactivation = %+v", r)
			}
			if _, err := e.s.Append(opCtx(t), "/text", AppendRequest{ContentType: ctText, Records: recs("c")}); err == nil {
				t.Error("append to a closed stream succeeded after reactivation")
			}
			if r := e.append("/prod", AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("p", 1, 0)}); r.Outcome != Duplicate {
				t.Errorf("producer retry after reactivation = %+v", r)
			}
			if got := e.readMessages("/json"); len(got) != 2 {
				t.Errorf("/json holds %q", got)
			}
		})
	}
}
