// Package nkms is a testcontainers-go module for the nkms container image
// (the Containerfile at the root of the nkms repository): Run starts the
// image, waits until /healthz answers, and gives the base URL on the host,
// the access key it made sure of, and a client that signs with it.
//
//	ctr, err := nkms.Run(ctx, "localhost/nkms:dev")
//	testcontainers.CleanupContainer(t, ctr)
//	c, err := ctr.Client(ctx)            // or ctr.BaseURL, AccessKey, SecretKey
//
// It is a module of its own so that testcontainers-go's dependencies stay
// out of nkms's. With podman instead of Docker, point DOCKER_HOST at
// podman's Docker-compatible socket and set TESTCONTAINERS_RYUK_DISABLED=true;
// where a /.dockerenv file makes testcontainers-go believe it runs in a
// container, TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 keeps it on loopback
// (see this module's tests).
package nkms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/nkms/nkms/client"
)

// Port is the port the image serves the API on.
const Port = "8383/tcp"

// DefaultAccessKey is the access key id Run creates unless WithCredentials
// names another; its secret is random for each container.
const DefaultAccessKey = "TESTCONTAINERS"

// Container is a running nkms container.
type Container struct {
	testcontainers.Container
	accessKey, secretKey string
}

type options struct {
	accessKey, secretKey string
	seed                 string // YAML of --seed; "" for none
	devClock             bool   // --dev-clock
}

// Option is an option of Run that belongs to this module.
type Option func(*options) error

// Customize does nothing: Run reads Options itself.
func (o Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithCredentials makes the server ensure this access key (admin of
// keystore 1) instead of DefaultAccessKey and a random secret: the
// NKMS_ACCESS_KEY and NKMS_SECRET_KEY of `nkms server`. The id is 4-64
// letters, digits, '-' or '_'; the secret at least 16 characters.
func WithCredentials(accessKey, secretKey string) Option {
	return func(o *options) error {
		if accessKey == "" || len(secretKey) < 16 {
			return errors.New("nkms: WithCredentials needs an access key and a secret of at least 16 characters")
		}
		o.accessKey, o.secretKey = accessKey, secretKey
		return nil
	}
}

// WithSeed declares access keys and keys, as `nkms server --seed FILE`
// does with the YAML of FILE (docs/testing.md of the nkms repository): the
// text is copied into the container as /seed.yaml. ${VAR} in it reads the
// container's environment (testcontainers.WithEnv).
func WithSeed(yaml string) Option {
	return func(o *options) error {
		if strings.TrimSpace(yaml) == "" {
			return errors.New("nkms: WithSeed needs the YAML of a seed file")
		}
		o.seed = yaml
		return nil
	}
}

// WithDevClock runs the server with a clock that tests move forward
// (Container.Advance): `nkms server --dev-clock`. For tests only.
func WithDevClock() Option {
	return func(o *options) error {
		o.devClock = true
		return nil
	}
}

// Run starts the nkms image img with the image's command (plain HTTP on
// 0.0.0.0:8383, data in the /data volume) and waits until GET /healthz
// answers "ok" on the published port. Other options (testcontainers.WithCmd,
// WithEnv, WithMounts, ...) apply after the module's.
func Run(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	settings := options{accessKey: DefaultAccessKey}
	for _, opt := range opts {
		if opt, ok := opt.(Option); ok {
			if err := opt(&settings); err != nil {
				return nil, err
			}
		}
	}
	if settings.secretKey == "" {
		b := make([]byte, 16)
		rand.Read(b)
		settings.secretKey = hex.EncodeToString(b)
	}

	moduleOpts := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(Port),
		testcontainers.WithEnv(map[string]string{
			"NKMS_ACCESS_KEY": settings.accessKey,
			"NKMS_SECRET_KEY": settings.secretKey,
		}),
		// The image's HEALTHCHECK is not used: podman runs it only under
		// systemd. /healthz from outside also proves the port is published.
		testcontainers.WithWaitStrategy(wait.ForHTTP("/healthz").WithPort(Port).
			WithResponseMatcher(func(body io.Reader) bool {
				b, err := io.ReadAll(io.LimitReader(body, 64))
				return err == nil && strings.TrimSpace(string(b)) == "ok"
			})),
	}
	if settings.seed != "" || settings.devClock {
		// The image's command, and the flags of the options.
		cmd := []string{"server", "--listen", "0.0.0.0:8383", "--data-dir", "/data", "--insecure-http"}
		if settings.seed != "" {
			cmd = append(cmd, "--seed", "/seed.yaml")
			moduleOpts = append(moduleOpts, testcontainers.WithFiles(testcontainers.ContainerFile{
				Reader: strings.NewReader(settings.seed), ContainerFilePath: "/seed.yaml", FileMode: 0o644, // the image's user reads it
			}))
		}
		if settings.devClock {
			cmd = append(cmd, "--dev-clock")
		}
		moduleOpts = append(moduleOpts, testcontainers.WithCmd(cmd...))
	}
	moduleOpts = append(moduleOpts, opts...)

	ctr, err := testcontainers.Run(ctx, img, moduleOpts...)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr, accessKey: settings.accessKey, secretKey: settings.secretKey}
	}
	if err != nil {
		return c, fmt.Errorf("run nkms: %w", err)
	}
	return c, nil
}

// BaseURL is the base URL of the API on the host, e.g. http://localhost:32771.
func (c *Container) BaseURL(ctx context.Context) (string, error) {
	return c.PortEndpoint(ctx, Port, "http")
}

// Advance moves the server's clock forward by d and runs its scheduler at
// once (POST /nkms/v1/dev/clock): every key whose pending deletion ended is
// destroyed, and every key whose rotation was due rotated, before it
// returns. The container must run WithDevClock.
func (c *Container) Advance(ctx context.Context, d time.Duration) (*client.Clock, error) {
	kms, err := c.Client(ctx)
	if err != nil {
		return nil, err
	}
	return kms.AdvanceClock(ctx, d)
}

// AccessKey is the access key id the server made sure of.
func (c *Container) AccessKey() string { return c.accessKey }

// SecretKey is the secret of AccessKey.
func (c *Container) SecretKey() string { return c.secretKey }

// Client is a client of BaseURL that signs with AccessKey.
func (c *Container) Client(ctx context.Context, opts ...client.Option) (*client.Client, error) {
	url, err := c.BaseURL(ctx)
	if err != nil {
		return nil, err
	}
	return client.New(url, c.accessKey, c.secretKey, opts...)
}
