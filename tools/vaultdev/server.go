package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
	"github.com/hashicorp/vault/sdk/physical/file"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// Mount paths and types vaultdev sets up on first start.
const (
	// KVMount is the KV version 2 engine.
	KVMount = "secret"
	// AppRoleMount is the AppRole auth method.
	AppRoleMount = "approle"
	// LeasedMount is a key/value engine whose reads return leases: a value
	// written with a "ttl" key is read back with a renewable lease of that
	// TTL (Vault's LeasedPassthroughBackendFactory, as `vault server -dev
	// -dev-leased-kv` uses). Each read issues a new lease.
	LeasedMount = "leased"
	// LeasedType is the mount type of LeasedMount.
	LeasedType = "leased-kv"

	initFile   = "init.json"
	storageDir = "storage"
)

// Config is what vaultdev runs.
type Config struct {
	// Listen is the TCP address of the HTTP API, e.g. "127.0.0.1:0".
	Listen string
	// DataDir holds the file storage and init.json; empty means memory.
	DataDir string
	// LogLevel is Vault's log level.
	LogLevel string
	// AllowNonLoopback permits a Listen address other than loopback, for
	// test clusters whose nodes run in other network namespaces.
	AllowNonLoopback bool
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:0: %w", c.Listen, err)
	}
	if ip := net.ParseIP(host); !c.AllowNonLoopback && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: vaultdev serves plain HTTP with a printed root token; use a loopback address such as 127.0.0.1:0, or --allow-non-loopback for a test network", c.Listen)
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// Info is the JSON line vaultdev prints and stores in init.json.
type Info struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	UnsealKey string `json:"unseal_key"` // base64 of the single Shamir share
}

// Server is a running Vault.
type Server struct {
	Info Info

	core *vault.Core
	http *http.Server
	done chan error
	log  *slog.Logger
}

// Start opens storage, initialises or unseals Vault, sets up the mounts and
// serves the HTTP API. It returns once Vault answers requests.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	hlog := hclog.New(&hclog.LoggerOptions{
		Name:   "vault",
		Output: os.Stderr,
		Level:  hclog.LevelFromString(cfg.LogLevel),
	})
	backend, err := openStorage(cfg.DataDir, hlog)
	if err != nil {
		return nil, err
	}

	logicalBackends := map[string]logical.Factory{LeasedType: vault.LeasedPassthroughBackendFactory}
	credentialBackends := map[string]logical.Factory{"approle": approle.Factory}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:           backend,
		LogicalBackends:    logicalBackends,
		CredentialBackends: credentialBackends,
		BuiltinRegistry:    newRegistry(logicalBackends, credentialBackends),
		Logger:             hlog,
		DisableMlock:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("create vault core: %w", err)
	}
	rootCtx := namespace.RootContext(ctx)

	info, err := initOrUnseal(rootCtx, core, cfg.DataDir)
	if err != nil {
		_ = core.Shutdown()
		return nil, err
	}
	if err := ensureMounts(rootCtx, core, info.RootToken); err != nil {
		_ = core.Shutdown()
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = core.Shutdown()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	info.Addr = "http://" + ln.Addr().String()
	if cfg.DataDir != "" {
		if err := writeInfo(filepath.Join(cfg.DataDir, initFile), info); err != nil {
			_ = ln.Close()
			_ = core.Shutdown()
			return nil, err
		}
	}

	handler := vaulthttp.Handler.Handler(&vault.HandlerProperties{
		Core: core,
		ListenerConfig: &configutil.Listener{
			Type:       "tcp",
			Address:    ln.Addr().String(),
			TLSDisable: true,
		},
	})
	s := &Server{
		Info: info,
		core: core,
		http: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
		log:  log,
	}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

// Done reports the HTTP server's end.
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops serving, then seals and stops the core.
func (s *Server) Shutdown(ctx context.Context) error {
	httpErr := s.http.Shutdown(ctx)
	coreErr := s.core.ShutdownWait()
	return errors.Join(httpErr, coreErr)
}

func openStorage(dataDir string, hlog hclog.Logger) (physical.Backend, error) {
	if dataDir == "" {
		b, err := inmem.NewInmem(nil, hlog.Named("storage"))
		if err != nil {
			return nil, fmt.Errorf("in-memory storage: %w", err)
		}
		return b, nil
	}
	dir := filepath.Join(dataDir, storageDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	b, err := file.NewFileBackend(map[string]string{"path": dir}, hlog.Named("storage"))
	if err != nil {
		return nil, fmt.Errorf("file storage in %s: %w", dir, err)
	}
	return b, nil
}

// initOrUnseal initialises a fresh Vault with one key share, or unseals an
// initialised one with the key stored in dataDir/init.json.
func initOrUnseal(ctx context.Context, core *vault.Core, dataDir string) (Info, error) {
	initialized, err := core.Initialized(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("check whether vault is initialised: %w", err)
	}
	var info Info
	var key []byte
	if initialized {
		path := filepath.Join(dataDir, initFile)
		info, err = readInfo(path)
		if err != nil {
			return Info{}, fmt.Errorf("vault in %s is initialised but its key cannot be read (remove the directory to start afresh): %w", dataDir, err)
		}
		if key, err = base64.StdEncoding.DecodeString(info.UnsealKey); err != nil {
			return Info{}, fmt.Errorf("%s: unseal_key is not base64: %w", path, err)
		}
	} else {
		res, err := core.Initialize(ctx, &vault.InitParams{
			BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1, Name: "shamir"},
		})
		if err != nil {
			return Info{}, fmt.Errorf("initialise vault: %w", err)
		}
		key = res.SecretShares[0]
		info = Info{RootToken: res.RootToken, UnsealKey: base64.StdEncoding.EncodeToString(key)}
		if dataDir != "" {
			// Store the key before anything else can fail, or the data
			// directory could never be unsealed again.
			if err := writeInfo(filepath.Join(dataDir, initFile), info); err != nil {
				return Info{}, err
			}
		}
	}
	unsealed, err := core.Unseal(key)
	if err != nil {
		return Info{}, fmt.Errorf("unseal vault: %w", err)
	}
	if !unsealed {
		return Info{}, errors.New("unseal vault: still sealed after the only key share")
	}
	return info, nil
}

// ensureMounts creates the mounts vaultdev promises, skipping existing ones,
// so a start interrupted half-way is completed by the next.
func ensureMounts(ctx context.Context, core *vault.Core, token string) error {
	secrets, err := request(ctx, core, token, logical.ReadOperation, "sys/mounts", nil)
	if err != nil {
		return err
	}
	if _, ok := secrets["secret/"]; !ok {
		if _, err := request(ctx, core, token, logical.UpdateOperation, "sys/mounts/"+KVMount, map[string]any{
			"type":        "kv",
			"description": "key/value secret storage (KV version 2)",
			"options":     map[string]string{"version": "2"},
		}); err != nil {
			return err
		}
	}
	if _, ok := secrets[LeasedMount+"/"]; !ok {
		if _, err := request(ctx, core, token, logical.UpdateOperation, "sys/mounts/"+LeasedMount, map[string]any{
			"type":        LeasedType,
			"description": "key/value storage whose reads return leases (write a ttl key to make them renewable)",
		}); err != nil {
			return err
		}
	}
	auths, err := request(ctx, core, token, logical.ReadOperation, "sys/auth", nil)
	if err != nil {
		return err
	}
	if _, ok := auths[AppRoleMount+"/"]; !ok {
		if _, err := request(ctx, core, token, logical.UpdateOperation, "sys/auth/"+AppRoleMount, map[string]any{
			"type": "approle",
		}); err != nil {
			return err
		}
	}
	return nil
}

func request(ctx context.Context, core *vault.Core, token string, op logical.Operation, path string, data map[string]any) (map[string]any, error) {
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation:   op,
		Path:        path,
		ClientToken: token,
		Data:        data,
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, path, err)
	}
	if resp == nil {
		return nil, nil
	}
	if resp.IsError() {
		return nil, fmt.Errorf("%s %s: %w", op, path, resp.Error())
	}
	return resp.Data, nil
}

func readInfo(path string) (Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	if info.UnsealKey == "" || info.RootToken == "" {
		return Info{}, fmt.Errorf("%s: unseal_key or root_token missing", path)
	}
	return info, nil
}

// writeInfo replaces path atomically with info, mode 0600.
func writeInfo(path string, info Info) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
