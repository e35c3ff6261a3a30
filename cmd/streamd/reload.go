package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/streamd/streamd/httpapi"
)

// authPollInterval is how often the auth file's size and modification time
// are checked for a change.
const authPollInterval = 3 * time.Second

// reloader re-reads the TLS certificate and the auth file on SIGHUP, and
// the auth file whenever it changes. Either may be nil.
type reloader struct {
	certs *certReloader
	auth  *httpapi.Auth
	log   *slog.Logger
}

// reload reads everything again; what fails to load is logged and the
// version in use is kept.
func (r *reloader) reload() {
	if r.certs != nil {
		if err := r.certs.reload(); err != nil {
			r.log.Error("TLS certificate not reloaded; keeping the one in use", "err", err)
		} else {
			r.log.Info("TLS certificate reloaded", "expires", r.certs.expiry())
		}
	}
	if r.auth != nil {
		if err := r.auth.Reload(); err != nil {
			r.log.Error("auth file not reloaded; keeping the rules in force", "err", err)
		}
	}
}

// start serves SIGHUP and watches the auth file until the returned stop
// is called. It does nothing when there is nothing to reload, so SIGHUP
// keeps its default meaning then.
func (r *reloader) start() (stop func()) {
	if r.certs == nil && r.auth == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Info("SIGHUP: reloading")
				r.reload()
			}
		}
	}()
	if r.auth != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.auth.Watch(ctx, authPollInterval)
		}()
	}
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
