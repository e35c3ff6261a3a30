package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// serverProc is a server the tool started itself (scenarios that restart
// it). Its output goes to the tool's stderr.
type serverProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	// ready is the time from exec to the first answered HTTP request.
	ready time.Duration
}

// readyTimeout bounds how long a started server may take to answer.
const readyTimeout = 60 * time.Second

// startServer runs cmdline (split on spaces) and waits until the server
// answers any HTTP request on e.base.
func startServer(ctx context.Context, cmdline string, e *env) (*serverProc, error) {
	args := strings.Fields(cmdline)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server %q: %w", cmdline, err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	probe := e.streamURL(e.prefix + "-ready-probe")
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, probe, nil)
		if err != nil {
			p.kill()
			return nil, err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			p.ready = time.Since(t0)
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("server %q exited before answering", cmdline)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(t0) > readyTimeout {
			p.kill()
			return nil, fmt.Errorf("server %q did not answer within %v", cmdline, readyTimeout)
		}
	}
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// stop asks the server to shut down (SIGTERM) and waits; after timeout it
// is killed and stop reports an error.
func (p *serverProc) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		p.kill()
		return errors.New("server did not stop within " + timeout.String() + " of SIGTERM")
	}
}

// kill SIGKILLs the server and waits until it is gone.
func (p *serverProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}
