package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/metrics"
	"github.com/moor-dev/moor/reconciler/webhook"
)

// syncer is what the webhook trigger drives.
type syncer interface {
	SyncWithCause(ctx context.Context, webhookAt time.Time) (api.SyncResponse, error)
}

// edge builds the outer HTTP handler: webhook receivers (authenticated by
// their HMAC or token, not by client certificates), metrics and health
// endpoints, and the mTLS API for everything else. It also returns the
// trigger that coalesces webhook-requested fetches: at most one runs and
// one waits, whatever the rate of pushes.
func (s *Server) edge(apiHandler http.Handler, sync syncer, m *metrics.Metrics) (http.Handler, *webhook.Trigger, error) {
	trig := webhook.NewTrigger(func(ctx context.Context, c webhook.Cause) error {
		s.cfg.Log.Info("webhook sync", "reason", c.Reason, "requests", c.Requests, "commit", c.Commit)
		// The earliest webhook of the batch starts the commit's push→running time.
		_, err := sync.SyncWithCause(ctx, c.At)
		return err
	}, s.cfg.Log.With("component", "webhook-trigger"))

	secrets, err := webhook.LoadSecrets(s.cfg.WebhookSecretsFile, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if len(secrets) > 0 {
		h, err := webhook.NewHandler(webhook.Config{
			Branch: s.cfg.Source.Branch, Secrets: secrets, Trigger: trig,
			Log: s.cfg.Log.With("component", "webhook"), Metrics: m,
		})
		if err != nil {
			return nil, nil, err
		}
		s.hooks = h
	} else if s.plainLn != nil {
		return nil, nil, errNoHooks
	}
	mux := http.NewServeMux()
	if s.hooks != nil {
		mux.Handle("/hooks/", s.hooks)
	}
	metrics.Register(mux, m, s.ready.Check())
	mux.Handle("/", apiHandler)
	return mux, trig, nil
}

// servePlain serves webhooks and health checks (not the API, not metrics)
// over plain HTTP for a reverse proxy that terminates TLS.
func (s *Server) servePlain(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/hooks/", s.hooks)
	metrics.Register(mux, nil, s.ready.Check())
	srv := webhook.NewPlainServer(s.plainLn.Addr().String(), mux, s.cfg.Log)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(s.plainLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func syncResult(res api.SyncResponse, err error) string {
	switch {
	case err != nil:
		return metrics.SyncError
	case res.State == api.CommitRejected:
		return metrics.SyncRejected
	case res.Changed:
		return metrics.SyncChanged
	}
	return metrics.SyncUnchanged
}

var errNoHooks = errors.New("server: --webhook-listen needs webhook secrets (--webhook-secrets file or MOOR_WEBHOOK_<PROVIDER>_SECRET)")
