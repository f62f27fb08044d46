package cli

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// dashboardAssets are the page templates and the style sheet.
//
//go:embed dashboard/*.html dashboard/*.css
var dashboardAssets embed.FS

// dashboardNav are the pages in the nav bar, in order; the pod page
// is linked from the grids and the error page stands in for any page.
var dashboardNav = []struct{ Key, Path, Title string }{
	{"overview", "/", "Overview"},
	{"deployments", "/deployments", "Deployments"},
	{"services", "/services", "Services"},
	{"jobs", "/jobs", "Jobs"},
	{"secrets", "/secrets", "Secrets"},
	{"commits", "/commits", "Commits"},
}

// dashboardCSP forbids every script, frame and foreign resource: the
// pages are plain HTML with one same-origin style sheet.
const dashboardCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboardHandlerConfig configures the dashboard's HTTP handler.
type dashboardHandlerConfig struct {
	Reader  viewReader
	Target  dashboardTarget
	Refresh time.Duration // 0: pages do not reload themselves
	Timeout time.Duration // bounds the server requests of one page
	Now     func() time.Time
	Log     *slog.Logger
}

// Validate checks that every dependency is set.
func (c *dashboardHandlerConfig) Validate() error {
	switch {
	case c.Reader == nil:
		return errors.New("dashboard: no view reader")
	case c.Now == nil:
		return errors.New("dashboard: no clock")
	case c.Log == nil:
		return errors.New("dashboard: no logger")
	case c.Timeout <= 0:
		return fmt.Errorf("dashboard: timeout must be positive, got %s", c.Timeout)
	}
	return nil
}

// dashboardHandler serves the pages. It only reads from the server.
type dashboardHandler struct {
	cfg   dashboardHandlerConfig
	pages map[string]*template.Template
	css   []byte
	mux   *http.ServeMux
}

// layoutData is what the layout template renders around a page.
type layoutData struct {
	Title   string
	Active  string
	Nav     any
	Target  dashboardTarget
	Refresh int // seconds; 0 none
	Now     string
	Banner  *banner
	Page    any
}

// banner is an error shown instead of a page's content.
type banner struct {
	Title   string
	Message string
	Hint    string
}

// newDashboardHandler parses the embedded templates and routes the pages.
func newDashboardHandler(cfg dashboardHandlerConfig) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &dashboardHandler{cfg: cfg, pages: map[string]*template.Template{}}
	css, err := fs.ReadFile(dashboardAssets, "dashboard/style.css")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	h.css = css
	for _, name := range []string{"overview", "deployments", "services", "jobs", "secrets", "commits", "pod", "error"} {
		t, err := template.ParseFS(dashboardAssets, "dashboard/layout.html", "dashboard/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.page("overview", "Overview", func(ctx context.Context, r *http.Request, now time.Time) (any, error) {
		return loadOverview(ctx, cfg.Reader, now)
	}))
	m.HandleFunc("GET /deployments", h.page("deployments", "Deployments", func(ctx context.Context, _ *http.Request, now time.Time) (any, error) {
		v, err := cfg.Reader.Deployments(ctx)
		return deploymentsPage(v, now), err
	}))
	m.HandleFunc("GET /services", h.page("services", "Services", func(ctx context.Context, _ *http.Request, now time.Time) (any, error) {
		v, err := cfg.Reader.Services(ctx)
		return servicesPage(v), err
	}))
	m.HandleFunc("GET /jobs", h.page("jobs", "Jobs", func(ctx context.Context, _ *http.Request, now time.Time) (any, error) {
		jobs, err := cfg.Reader.Jobs(ctx)
		if err != nil {
			return nil, err
		}
		cjs, err := cfg.Reader.CronJobs(ctx)
		return jobsPage(jobs, cjs, now), err
	}))
	m.HandleFunc("GET /secrets", h.page("secrets", "Secrets", func(ctx context.Context, _ *http.Request, now time.Time) (any, error) {
		v, err := cfg.Reader.Secrets(ctx)
		return secretsPage(v, now), err
	}))
	m.HandleFunc("GET /commits", h.page("commits", "Commits", func(ctx context.Context, _ *http.Request, now time.Time) (any, error) {
		v, err := cfg.Reader.Commits(ctx)
		return commitsPage(v, now), err
	}))
	m.HandleFunc("GET /pods/{namespace}/{name}", h.page("pod", "Pod", func(ctx context.Context, r *http.Request, now time.Time) (any, error) {
		ns, name := r.PathValue("namespace"), r.PathValue("name")
		pods, err := cfg.Reader.Pods(ctx)
		if err != nil {
			return nil, err
		}
		for i := range pods {
			if p := &pods[i].Pod; p.Namespace == ns && p.Name == name {
				return podPage(pods[i], now), nil
			}
		}
		return nil, &NotFoundError{Resource: "pods", Name: ns + "/" + name}
	}))
	m.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(h.css)
	})
	m.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		h.render(w, "error", "Not found", "", nil, &banner{Title: "Not found",
			Message: fmt.Sprintf("The dashboard has no page %s.", r.URL.Path), Hint: "Use the links above."}, http.StatusNotFound)
	})
	h.mux = m
	return h, nil
}

// ServeHTTP guards every request, then routes it.
func (h *dashboardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", dashboardCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the dashboard is read-only: only GET and HEAD are allowed", http.StatusMethodNotAllowed)
		return
	}
	// A page on another site may resolve its own name to 127.0.0.1 (DNS
	// rebinding) and read what the admin certificate fetched; browsers
	// then send that name as Host, so only loopback names are served.
	if host := hostOnly(r.Host); !loopbackHost(host) {
		http.Error(w, fmt.Sprintf("the dashboard answers only requests for localhost or a loopback IP, not Host %q; open it as http://127.0.0.1:PORT/", r.Host),
			http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// hostOnly strips the port of a Host header, if any.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// page serves one page: it loads the page's data with the page timeout
// and renders it, or a banner saying why it could not.
func (h *dashboardHandler) page(name, title string, load func(context.Context, *http.Request, time.Time) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		defer cancel()
		now := h.cfg.Now()
		data, err := load(ctx, r, now)
		if err != nil {
			b, status := h.errorBanner(err)
			if status != http.StatusNotFound {
				h.cfg.Log.Warn("page failed", "path", r.URL.Path, "status", status, "error", err)
			}
			h.render(w, name, title, r.URL.Path, nil, b, status)
			return
		}
		h.render(w, name, title, r.URL.Path, data, nil, http.StatusOK)
	}
}

// errorBanner explains err: 404 for a missing object, 504 when the
// server did not answer in time, 502 for every other failure to get an
// answer from it.
func (h *dashboardHandler) errorBanner(err error) (*banner, int) {
	var nf *NotFoundError
	var ae *APIError
	switch {
	case errors.As(err, &nf):
		return &banner{Title: "Not found", Message: err.Error(), Hint: "It may have been removed by a newer commit; see the overview."}, http.StatusNotFound
	case errors.As(err, &ae):
		hint := fmt.Sprintf("The moor server at %s answered with an error; its log says more. The page reloads by itself.", h.cfg.Target.Server)
		if ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden {
			hint = fmt.Sprintf("The moor server at %s refused the context's certificate; use the admin.conf `moor server` wrote.", h.cfg.Target.Server)
		}
		return &banner{Title: "Error from server (" + ae.Reason() + ")", Message: ae.Message, Hint: hint}, http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded):
		return &banner{Title: "The moor server did not answer in time", Message: err.Error(),
			Hint: fmt.Sprintf("Is the server at %s overloaded? Raise --%s.", h.cfg.Target.Server, flagTimeout)}, http.StatusGatewayTimeout
	}
	return &banner{Title: "Cannot reach the moor server", Message: err.Error(),
		Hint: "The page reloads by itself and recovers as soon as the server answers."}, http.StatusBadGateway
}

// render executes a page into memory first, so a template failure is a
// clean 500 rather than half a page.
func (h *dashboardHandler) render(w http.ResponseWriter, name, title, path string, data any, b *banner, status int) {
	d := layoutData{Title: title, Active: activeNav(path), Nav: dashboardNav, Target: h.cfg.Target,
		Refresh: int((h.cfg.Refresh + time.Second - 1) / time.Second), Now: h.cfg.Now().UTC().Format(time.RFC3339),
		Banner: b, Page: data}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		h.cfg.Log.Error("render page", "page", name, "error", err)
		http.Error(w, "the dashboard failed to render this page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// activeNav is the nav key of a request path ("" for none).
func activeNav(path string) string {
	for _, n := range dashboardNav {
		if n.Path == path {
			return n.Key
		}
	}
	return ""
}

// loadOverview reads commits, nodes and pods for the overview.
func loadOverview(ctx context.Context, r viewReader, now time.Time) (any, error) {
	commits, err := r.Commits(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	pods, err := r.Pods(ctx)
	if err != nil {
		return nil, err
	}
	return overviewPage(commits, nodes, pods, now), nil
}
