// Command vaultdev runs a real HashiCorp Vault server in-process for moor's
// tests and development clusters: plain HTTP on a loopback address, one
// Shamir key share, KV v2 at secret/, AppRole at approle/ and a leased
// key/value engine at leased/ whose reads return leases (Vault's own
// LeasedPassthroughBackendFactory, as `vault server -dev -dev-leased-kv`
// uses): write {"password":"x","ttl":"30s"} to leased/app/db and every read
// of it issues a new lease of 30s, renewable (sys/leases/renew) up to the
// mount's max_lease_ttl; without a "ttl" key the lease has the default TTL
// and is not renewable. No outside service is needed.
//
// It is its own Go module (github.com/moor-dev/moor/tools/vaultdev) because
// Vault's dependency tree is large; the main module never imports it.
//
// Usage:
//
//	vaultdev [--listen 127.0.0.1:0] [--data-dir DIR] [--log-level warn] [--allow-non-loopback]
//
// When Vault is ready, vaultdev writes one JSON line to stdout,
//
//	{"addr":"http://127.0.0.1:PORT","root_token":"hvs....","unseal_key":"BASE64"}
//
// and, with --data-dir, the same object to DIR/init.json (mode 0600). With
// --data-dir, Vault's storage lives in DIR/storage and survives a restart:
// the next start with the same DIR unseals itself with the stored key.
// Without it storage is in memory. SIGINT or SIGTERM shut it down
// gracefully. Logs go to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "TCP address to serve Vault's HTTP API on (plain HTTP; keep it on loopback)")
	flag.StringVar(&cfg.DataDir, "data-dir", "", "directory for Vault's file storage and init.json; empty keeps everything in memory")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "Vault's log level: trace, debug, info, warn or error")
	flag.BoolVar(&cfg.AllowNonLoopback, "allow-non-loopback", false, "allow a --listen address other than loopback (plain HTTP: test networks only)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "vaultdev")
	if err := run(cfg, log); err != nil {
		log.Error("vaultdev failed", "err", err)
		os.Exit(1)
	}
}

func run(cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	srv, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	line, err := json.Marshal(srv.Info)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(os.Stdout, "%s\n", line); err != nil {
		return fmt.Errorf("write init line to stdout: %w", err)
	}
	log.Info("vault ready", "addr", srv.Info.Addr, "data_dir", cfg.DataDir)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-srv.Done():
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("http server: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
