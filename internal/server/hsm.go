package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/hsm"
)

// validateHSM checks the HSM settings (issue 18): a module needs a token
// label and a PIN (NKMS_HSM_PIN or --hsm-pin-file, never a flag value), and
// a binary built without cgo refuses --hsm-module.
func (c *Config) validateHSM() error {
	if c.HSMModule == "" {
		switch {
		case c.HSMToken != "":
			return errors.New("--hsm-token needs --hsm-module")
		case c.HSMPINFile != "":
			return errors.New("--hsm-pin-file needs --hsm-module")
		}
		return nil
	}
	if !hsm.Supported {
		return &hintError{errors.New("--hsm-module: this nkms binary was built without HSM support"),
			"PKCS#11 needs cgo: build nkms with CGO_ENABLED=1 and a C compiler (the container image is a static build without it)"}
	}
	if c.HSMToken == "" {
		return errors.New("--hsm-module needs --hsm-token LABEL (the token's label)")
	}
	if c.HSMPIN == "" && c.HSMPINFile == "" {
		return &hintError{errors.New("--hsm-module needs the token's user PIN"),
			"set NKMS_HSM_PIN or give --hsm-pin-file FILE"}
	}
	if c.HSMPIN != "" && c.HSMPINFile != "" {
		return errors.New("the HSM PIN is both in NKMS_HSM_PIN and in --hsm-pin-file: give one")
	}
	if c.HSMEmulateSoftware {
		return errors.New("--hsm-emulate-software is for servers without an HSM: not with --hsm-module")
	}
	return nil
}

// openHSM logs in to the configured token; nil without --hsm-module.
func openHSM(cfg Config) (*hsm.Token, error) {
	if cfg.HSMModule == "" {
		return nil, nil
	}
	pin := cfg.HSMPIN
	if cfg.HSMPINFile != "" {
		b, err := os.ReadFile(cfg.HSMPINFile)
		if err != nil {
			return nil, fmt.Errorf("--hsm-pin-file: %w", err)
		}
		pin = strings.TrimRight(string(b), "\r\n")
		if pin == "" {
			return nil, fmt.Errorf("--hsm-pin-file %s is empty", cfg.HSMPINFile)
		}
	}
	tok, err := hsm.Open(hsm.Config{Module: cfg.HSMModule, Token: cfg.HSMToken, PIN: pin})
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// startHSM reports the COMMON_HSM keys at start-up and sweeps orphaned
// token objects (nkms.Service.StartHSM); it refuses to start when key
// versions live in an HSM that is not configured.
func startHSM(ctx context.Context, svc *nkms.Service, cfg Config, log *slog.Logger, stderr io.Writer) error {
	r, err := svc.StartHSM(ctx)
	if err != nil {
		return fmt.Errorf("hsm: %w", err)
	}
	switch {
	case svc.HSM != nil:
		log.Info("HSM ready: COMMON_HSM keys are generated and used in the token",
			"module", cfg.HSMModule, "token", cfg.HSMToken, "tokenVersions", r.TokenVersions, "orphansDeleted", r.Swept)
	case svc.HSMEmulate:
		fmt.Fprintln(stderr, "nkms: no HSM: COMMON_HSM keys are accepted and kept in software like BASIC ones (--hsm-emulate-software or --dev)")
	}
	if r.SoftwareKeys > 0 {
		fmt.Fprintf(stderr, "nkms: %d COMMON_HSM key(s) are kept in software (made before HSM support, or emulated); they keep working\n", r.SoftwareKeys)
		fmt.Fprintln(stderr, "nkms: hint: with --hsm-module their next versions are made in the HSM; docs/operations/hsm.md")
	}
	return nil
}
