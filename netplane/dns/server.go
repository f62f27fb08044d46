package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Config configures a node's DNS server.
type Config struct {
	// Listen is the UDP and TCP address, e.g. "10.244.1.1:53" (the bridge
	// gateway); a port of 0 picks a free port, the same for both.
	Listen string
	// Domain is the cluster domain; default "cluster.local".
	Domain string
	// Upstreams receive every name outside Domain ("ip" or "ip:port");
	// default: the nameservers of the host's /etc/resolv.conf.
	Upstreams []string
	// ForwardTimeout bounds one exchange with one upstream; default 2s.
	ForwardTimeout time.Duration
	// Log receives errors; default: discarded.
	Log *slog.Logger
}

// Validate reports the first configuration mistake, naming the field.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("dns: Listen %q: want host:port such as 10.244.1.1:53: %w", c.Listen, err)
	}
	if c.Domain == "" || strings.HasPrefix(c.Domain, ".") || strings.HasSuffix(c.Domain, ".") {
		return fmt.Errorf("dns: Domain %q: want a domain such as cluster.local, without leading or trailing dot", c.Domain)
	}
	if _, ok := mdns.IsDomainName(c.Domain); !ok {
		return fmt.Errorf("dns: Domain %q is not a valid domain name", c.Domain)
	}
	for _, u := range c.Upstreams {
		if _, _, err := net.SplitHostPort(u); err != nil {
			return fmt.Errorf("dns: upstream %q: want ip:port: %w", u, err)
		}
	}
	return nil
}

// Server answers cluster names from the current Records and forwards the
// rest. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	domain string // lower case, no final dot
	tbl    atomic.Pointer[table]

	mu      sync.Mutex
	servers []*mdns.Server
	addr    string
	closed  bool
}

// New checks cfg and fills defaults; Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Upstreams == nil {
		f, err := os.Open("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("dns: no Upstreams given and the host's resolver config is unreadable: %w", err)
		}
		cfg.Upstreams = ParseResolvConf(f)
		f.Close()
	}
	ups := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		ups = append(ups, withPort(u))
	}
	cfg.Upstreams = ups
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Upstreams) == 0 {
		cfg.Log.Warn("no upstream resolvers: names outside the cluster domain will fail (SERVFAIL)")
	}
	s := &Server{cfg: cfg, log: cfg.Log, domain: strings.ToLower(cfg.Domain)}
	s.tbl.Store(newTable(Records{}))
	return s, nil
}

// withPort adds the DNS port to a bare address.
func withPort(u string) string {
	if _, _, err := net.SplitHostPort(u); err == nil {
		return u
	}
	return net.JoinHostPort(strings.Trim(u, "[]"), "53")
}

// Update swaps in a new set of records atomically; queries in flight see
// either the old or the new set.
func (s *Server) Update(r Records) { s.tbl.Store(newTable(r)) }

// Start listens on UDP and TCP and serves until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	pc, ln, err := listenPair(ctx, s.cfg.Listen)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed || s.servers != nil {
		s.mu.Unlock()
		pc.Close()
		ln.Close()
		return errors.New("dns: server already started or closed")
	}
	var started sync.WaitGroup
	started.Add(2)
	s.servers = []*mdns.Server{
		{PacketConn: pc, Handler: s, NotifyStartedFunc: started.Done},
		{Listener: ln, Handler: s, NotifyStartedFunc: started.Done},
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range s.servers {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.log.Error("DNS listener stopped", "addr", s.addr, "err", err)
			}
		}()
	}
	s.mu.Unlock()
	started.Wait()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	s.log.Info("DNS server listening", "addr", s.addr, "domain", s.domain, "upstreams", s.cfg.Upstreams)
	return nil
}

// listenPair binds UDP and TCP on the same address; with port 0 it retries
// until both get the same free port.
func listenPair(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", addr, err)
		}
		tcpAddr := addr
		if host, port, _ := net.SplitHostPort(addr); port == "0" {
			tcpAddr = net.JoinHostPort(host, fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port))
		}
		ln, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if tcpAddr == addr || attempt == 10 {
			return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", tcpAddr, err)
		}
	}
}

// Addr is the address the server listens on (UDP and TCP), once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops the listeners; it is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	servers := s.servers
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	var errs []error
	for _, srv := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, srv.ShutdownContext(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// ServeDNS implements mdns.Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	resp := s.respond(r, isTCP(w))
	if resp == nil {
		return
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("write DNS response", "err", err)
	}
}

func isTCP(w mdns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

// respond builds the response to r: local for the cluster domain,
// forwarded otherwise.
func (s *Server) respond(r *mdns.Msg, overTCP bool) *mdns.Msg {
	m := new(mdns.Msg)
	if r.Opcode != mdns.OpcodeQuery {
		return m.SetRcode(r, mdns.RcodeNotImplemented)
	}
	if len(r.Question) != 1 {
		return m.SetRcode(r, mdns.RcodeFormatError)
	}
	q := r.Question[0]
	p, inDomain := parseName(q.Name, s.domain)
	if !inDomain {
		return s.forward(r, overTCP)
	}
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		m.Rcode = mdns.RcodeNameError
	} else {
		m.Rcode, m.Answer, m.Extra = s.tbl.Load().answer(s.domain, p, q.Qtype)
	}
	if len(m.Answer) == 0 {
		m.Ns = []mdns.RR{soa(s.domain)}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if !overTCP {
		m.Truncate(udpSize(r))
	}
	return m
}

// forward asks the upstreams in order: UDP first (TCP when the client
// came by TCP), TCP again when the UDP answer is truncated.
func (s *Server) forward(r *mdns.Msg, overTCP bool) *mdns.Msg {
	var lastErr error
	for _, up := range s.cfg.Upstreams {
		resp, err := s.exchange(r, up, overTCP)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Id = r.Id
		if !overTCP {
			resp.Truncate(udpSize(r))
		}
		return resp
	}
	s.log.Debug("forward failed", "name", r.Question[0].Name, "err", lastErr)
	return new(mdns.Msg).SetRcode(r, mdns.RcodeServerFailure)
}

func (s *Server) exchange(r *mdns.Msg, upstream string, useTCP bool) (*mdns.Msg, error) {
	netw := "udp"
	if useTCP {
		netw = "tcp"
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ForwardTimeout)
	defer cancel()
	c := &mdns.Client{Net: netw, Timeout: s.cfg.ForwardTimeout, UDPSize: mdns.MaxMsgSize}
	resp, _, err := c.ExchangeContext(ctx, r.Copy(), upstream)
	if err == nil && resp.Truncated && netw == "udp" {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, r.Copy(), upstream)
	}
	if err != nil {
		return nil, fmt.Errorf("forward to %s: %w", upstream, err)
	}
	return resp, nil
}

// udpSize is the largest UDP answer the client accepts.
func udpSize(r *mdns.Msg) int {
	if opt := r.IsEdns0(); opt != nil && opt.UDPSize() > mdns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return mdns.MinMsgSize
}
