package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/streamd/streamd/httpapi"
)

// listCommand is `streamd ls`: it lists the streams of a running server,
// following pages until the listing ends or --limit streams are shown.
func listCommand(ctx context.Context, args []string, getenv func(string) string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("streamd ls", flag.ContinueOnError)
	fs.SetOutput(errOut)
	server := fs.String("server", "http://127.0.0.1:4437", "base URL of the server (or of its --admin-addr)")
	prefix := fs.String("prefix", "", "list only streams whose path starts with this")
	limit := fs.Int("limit", 0, "show at most this many streams (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per stream instead of a table")
	token := fs.String("token", getenv("STREAMD_TOKEN"), "bearer token, when the server requires one (env STREAMD_TOKEN)")
	timeout := fs.Duration("timeout", 30*time.Second, "time limit for each page request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if *prefix != "" {
			return fmt.Errorf("ls: give the prefix as an argument or as --prefix, not both")
		}
		*prefix = fs.Arg(0)
	}
	base, err := url.Parse(strings.TrimSuffix(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("ls: --server %q is not an http(s) URL", *server)
	}
	client := &http.Client{Timeout: *timeout}
	var table *tabwriter.Writer
	if !*asJSON {
		table = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(table, "PATH\tCONTENT-TYPE\tBYTES\tCLOSED\tCREATED")
	}
	enc := json.NewEncoder(out)
	shown, after := 0, ""
	for {
		pageSize := 1000
		if *limit > 0 && *limit-shown < pageSize {
			pageSize = *limit - shown
		}
		page, err := fetchPage(ctx, client, base, *token, *prefix, after, pageSize)
		if err != nil {
			return err
		}
		for _, s := range page.Streams {
			if *asJSON {
				if err := enc.Encode(s); err != nil {
					return fmt.Errorf("ls: %w", err)
				}
			} else {
				fmt.Fprintf(table, "%s\t%s\t%d\t%v\t%s\n", s.Path, s.ContentType, s.Bytes, s.Closed, s.CreatedAt)
			}
		}
		shown += len(page.Streams)
		if page.Next == "" || (*limit > 0 && shown >= *limit) {
			break
		}
		after = page.Next
	}
	if table != nil {
		return table.Flush()
	}
	return nil
}

func fetchPage(ctx context.Context, client *http.Client, base *url.URL, token, prefix, after string, limit int) (*httpapi.ListPage, error) {
	u := *base
	u.Path += httpapi.ListPath
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ls: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("ls: read %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ls: %s answered %s: %s", u.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	var page httpapi.ListPage
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("ls: decode %s: %w", u.Redacted(), err)
	}
	return &page, nil
}
