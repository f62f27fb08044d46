package proxytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Serve starts TCP and UDP echo-identity servers on ip:port inside ns: each
// answers with its own address, so clients learn which endpoint they reached.
func Serve(tb testing.TB, ns, ip string, port int) {
	tb.Helper()
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	var ln net.Listener
	var pc net.PacketConn
	err := InNS(ns, func() error {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	tb.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, addr)
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(addr), from)
		}
	}()
}

// Ask connects from ns (optionally from source address src) to addr and
// returns the endpoint's answer.
func Ask(ctx context.Context, ns, network, src, addr string) (string, error) {
	var c net.Conn
	d := net.Dialer{}
	if src != "" {
		if network == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		} else {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
		}
	}
	err := InNS(ns, func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if network == "udp" {
		if _, err := c.Write([]byte("?")); err != nil {
			return "", err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// AskT is Ask with a timeout.
func AskT(ns, network, src, addr string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Ask(ctx, ns, network, src, addr)
}

// IsTimeout reports whether err is a timeout rather than a fast rejection.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
