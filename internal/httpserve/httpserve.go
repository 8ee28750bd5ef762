// Package httpserve serves an http.Handler on its own listener and hands
// back its base URL and a stop function: what the simulators (brokersim,
// directorysim) need to stand in for an external HTTP API in `vigil dev`,
// benchmarks and tests.
package httpserve

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Start listens on addr (e.g. "127.0.0.1:0") at once, so a taken port fails
// the call, and serves h in the background. It returns the server's base
// URL ("http://host:port") and a function that shuts the server down,
// waiting up to 5 s for open requests before closing them; stop may be
// called more than once.
func Start(addr string, h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			<-done
		})
	}
	return "http://" + ln.Addr().String(), stop, nil
}
