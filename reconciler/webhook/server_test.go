package webhook

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestNewPlainServerTimeouts(t *testing.T) {
	srv := NewPlainServer("127.0.0.1:0", http.NotFoundHandler(), quietLog())
	if srv.ReadHeaderTimeout != PlainReadHeaderTimeout || srv.ReadTimeout != PlainReadTimeout ||
		srv.WriteTimeout != PlainWriteTimeout || srv.IdleTimeout != PlainIdleTimeout || srv.MaxHeaderBytes != PlainMaxHeaderBytes {
		t.Fatalf("timeouts not set: %+v", srv)
	}

	// A client that never finishes its headers is cut off.
	srv.ReadHeaderTimeout = 150 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown(context.Background())
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /hooks/github HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after %s", time.Since(start))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cut off after %s", d)
	}
}
