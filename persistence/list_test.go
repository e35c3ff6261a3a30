package persistence

import (
	"reflect"
	"testing"
)

func TestList(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		paths := []string{"a", "chat/1", "chat/2", "chat/20", "chat/3", "chatter", "z\xff"}
		commit(t, s, func(b *Batch) error {
			for i, p := range paths {
				if err := b.PutMeta(p, &Meta{ID: uint64(i + 1), ContentType: "text/plain"}); err != nil {
					return err
				}
			}
			if err := b.Append(2, 0, []byte("hello")); err != nil { // chat/1
				return err
			}
			return b.PutMeta("chat/gone", &Meta{ID: 99, SoftDeleted: true})
		})
		names := func(ls []Listed) []string {
			var out []string
			for _, l := range ls {
				out = append(out, l.Path)
			}
			return out
		}
		for _, tc := range []struct {
			prefix, after string
			limit         int
			want          []string
			more          bool
		}{
			{"", "", 0, paths, false},
			{"chat/", "", 0, []string{"chat/1", "chat/2", "chat/20", "chat/3"}, false},
			{"chat/", "", 2, []string{"chat/1", "chat/2"}, true},
			{"chat/", "chat/2", 2, []string{"chat/20", "chat/3"}, false},
			{"chat/", "chat/3", 2, nil, false},
			{"chat/", "a", 0, []string{"chat/1", "chat/2", "chat/20", "chat/3"}, false}, // after before the prefix
			{"chat", "", 0, []string{"chat/1", "chat/2", "chat/20", "chat/3", "chatter"}, false},
			{"z\xff", "", 0, []string{"z\xff"}, false},
			{"nothing/", "", 0, nil, false},
		} {
			got, more, err := s.List(tc.prefix, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("List(%q, %q, %d): %v", tc.prefix, tc.after, tc.limit, err)
			}
			if !reflect.DeepEqual(names(got), tc.want) || more != tc.more {
				t.Errorf("List(%q, %q, %d) = %q, more %v; want %q, more %v", tc.prefix, tc.after, tc.limit, names(got), more, tc.want, tc.more)
			}
		}
		got, _, err := s.List("chat/1", "", 1)
		if err != nil || len(got) != 1 || got[0].Tail != 5 || got[0].Meta.ContentType != "text/plain" {
			t.Errorf("List(chat/1) = %+v, %v; want tail 5, text/plain", got, err)
		}
	})
}
