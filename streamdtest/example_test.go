package streamdtest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/streamd/streamd/streamdtest"
)

// A client's test starts a server, creates a stream, appends and reads it
// back over HTTP.
func Example() {
	srv, err := streamdtest.Start(streamdtest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	url := srv.StreamURL("chat/1")
	do := func(method, body string, header ...string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		return resp
	}
	fmt.Println(do(http.MethodPut, "", "Content-Type", "text/plain").Status)
	fmt.Println(do(http.MethodPost, "hello ", "Content-Type", "text/plain").Status)
	do(http.MethodPost, "world", "Content-Type", "text/plain")
	resp := do(http.MethodGet, "")
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %q\n", resp.Header.Get("Stream-Up-To-Date"), body)

	if err := srv.Clear(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(do(http.MethodGet, "").Status)
	// Output:
	// 201 Created
	// 204 No Content
	// true "hello world"
	// 404 Not Found
}
