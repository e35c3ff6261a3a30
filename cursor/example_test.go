package cursor_test

import (
	"fmt"
	"time"

	"github.com/streamd/streamd/cursor"
)

func ExampleGenerator_Next() {
	epoch := cursor.DefaultEpoch()
	now := func() time.Time { return epoch.Add(time.Hour + 5*time.Second) }
	minJitter := func(n int64) int64 { return 1 } // 1 second
	g := cursor.New(cursor.DefaultInterval, epoch).WithClock(now, minJitter)

	fmt.Println(g.Current())
	fmt.Println(g.Next(""))    // no client cursor: current interval
	fmt.Println(g.Next("42"))  // client behind: current interval
	fmt.Println(g.Next("180")) // client caught up: strictly greater
	fmt.Println(g.Next("bogus"))
	// Output:
	// 180
	// 180
	// 180
	// 181
	// 180
}
