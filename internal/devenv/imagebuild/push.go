package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrRegistry is wrapped by every error the registry answers with.
var ErrRegistry = errors.New("registry refused the request")

// httpClient never uses a proxy: the registries we push to are on loopback.
var httpClient = &http.Client{Transport: &http.Transport{Proxy: nil, IdleConnTimeout: 30 * time.Second}}

// Push builds s and pushes it to s.Registry as s.Repository:s.Tag over
// plain HTTP, skipping blobs the registry already has. It returns the
// manifest digest ("sha256:…"); the same Spec gives the same digest.
func Push(ctx context.Context, s Spec) (string, error) {
	img, err := Build(ctx, s)
	if err != nil {
		return "", err
	}
	if err := PushImage(ctx, s.Registry, s.Repository, s.Tag, img); err != nil {
		return "", err
	}
	return img.ManifestDigest.String(), nil
}

// PushImage pushes a built image's blobs and manifest.
func PushImage(ctx context.Context, registry, repo, tag string, img *Image) error {
	base := "http://" + registry + "/v2/" + repo
	for _, b := range []struct {
		d    digest.Digest
		data []byte
	}{{img.LayerDigest, img.Layer}, {img.ConfigDigest, img.Config}} {
		if err := pushBlob(ctx, base, b.d, b.data); err != nil {
			return fmt.Errorf("imagebuild: push %s to %s: %w", b.d, registry, err)
		}
	}
	resp, err := do(ctx, http.MethodPut, base+"/manifests/"+url.PathEscape(tag), ocispec.MediaTypeImageManifest, img.Manifest)
	if err != nil {
		return fmt.Errorf("imagebuild: put manifest %s/%s:%s: %w", registry, repo, tag, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("imagebuild: put manifest %s/%s:%s: %w", registry, repo, tag, statusErr(resp))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != img.ManifestDigest.String() {
		return fmt.Errorf("imagebuild: registry %s stored manifest %s:%s as %s, want %s", registry, repo, tag, got, img.ManifestDigest)
	}
	return nil
}

// pushBlob uploads data monolithically (POST then PUT ?digest=) unless a
// HEAD shows the registry already has it.
func pushBlob(ctx context.Context, base string, d digest.Digest, data []byte) error {
	resp, err := do(ctx, http.MethodHead, base+"/blobs/"+d.String(), "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if resp, err = do(ctx, http.MethodPost, base+"/blobs/uploads/", "", nil); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload: %w", statusErr(resp))
	}
	loc, err := uploadURL(base, resp.Header.Get("Location"), d)
	if err != nil {
		return err
	}
	if resp, err = do(ctx, http.MethodPut, loc, "application/octet-stream", data); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("finish upload: %w", statusErr(resp))
	}
	return nil
}

// uploadURL resolves the (possibly relative) upload Location against base
// and adds the digest query parameter.
func uploadURL(base, location string, d digest.Digest) (string, error) {
	if location == "" {
		return "", fmt.Errorf("%w: upload started without a Location header", ErrRegistry)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u, err := b.Parse(location)
	if err != nil {
		return "", fmt.Errorf("%w: bad upload Location %q: %v", ErrRegistry, location, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// response is what callers need from an HTTP answer; the body is read
// (bounded) and closed by do.
type response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func do(ctx context.Context, method, u, contentType string, body []byte) (*response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if body != nil {
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, u, err)
	}
	return &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func statusErr(r *response) error {
	return fmt.Errorf("%w: HTTP %d: %s", ErrRegistry, r.StatusCode, bytes.TrimSpace(r.Body))
}
