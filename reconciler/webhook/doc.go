// Package webhook receives push notifications from Git hosts and turns them
// into fetch requests for the reconciler.
//
// It owns the HTTP endpoints under /hooks/{provider} (GitHub, GitLab, Gitea,
// Forgejo, Bitbucket Cloud and Server, and a generic HMAC receiver), the
// verification of their signatures or tokens over the raw body, the pure
// parsers of their payloads, the redelivery filter, and Trigger, which
// coalesces any number of requests into at most one running and one queued
// fetch.
//
// It does not fetch, talk to Git, or know what a commit means: a push to the
// tracked branch only calls Trigger.Submit, and the reconciler decides what
// to do when the fetch runs. Secrets come from the server's configuration
// (LoadSecrets), never from the repository.
package webhook
