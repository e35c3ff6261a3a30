package metrics

import "testing"

func TestStatusLabels(t *testing.T) {
	cases := []struct {
		code int
		want string
	}{
		{200, "200"}, {201, "201"}, {204, "204"}, {304, "304"}, {400, "400"}, {404, "404"},
		{409, "409"}, {410, "410"}, {413, "413"}, {429, "429"}, {431, "431"}, {500, "500"}, {503, "503"},
		{202, "2xx"}, {307, "3xx"}, {418, "4xx"}, {599, "5xx"}, {101, "1xx"},
		// Out of range codes land in the nearest class rather than outside the array.
		{0, "1xx"}, {999, "5xx"},
	}
	for _, c := range cases {
		i := statusIndex(c.code)
		if i < 0 || i >= numStatus {
			t.Fatalf("statusIndex(%d) = %d, outside [0, %d)", c.code, i, numStatus)
		}
		if got := statusLabel(i); got != c.want {
			t.Errorf("code %d: label %q, want %q", c.code, got, c.want)
		}
	}
	for i, code := range statusCodes {
		if statusIndex(code) != i {
			t.Errorf("statusIndex(%d) = %d, want %d", code, statusIndex(code), i)
		}
	}
	for i, m := range methodNames[:numMethods-1] {
		if methodIndex(m) != i {
			t.Errorf("methodIndex(%s) = %d, want %d", m, methodIndex(m), i)
		}
	}
	if methodIndex("PATCH") != numMethods-1 {
		t.Errorf("PATCH is not counted as other")
	}
}
