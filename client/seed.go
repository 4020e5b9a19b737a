package client

import (
	"context"
	"fmt"
	"net/http"
)

// Seed is the declarations of a server, as GET /nkms/v1/seed answers them:
// the shape of a seed file (nkms server --seed), field for field.
type Seed struct {
	AccessKeys []SeedAccessKey `json:"accessKeys"`
	Keys       []SeedKey       `json:"keys"`
	// Skipped says in words what the export left out (keys pending deletion).
	Skipped []string `json:"skipped,omitempty"`
}

// SeedAccessKey declares an access key; SecretKey only in an export with material.
type SeedAccessKey struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey,omitempty"`
	Keystore  int64  `json:"keystore"`
	Role      string `json:"role"`
}

// SeedKey declares a key. Material (Base64) is version 1's and Versions
// hold versions 2, 3, ..., only in an export with material.
type SeedKey struct {
	Keystore       int64             `json:"keystore"`
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	ProtectionType string            `json:"protectionType,omitempty"`
	Convergent     bool              `json:"convergent,omitempty"`
	Tag            string            `json:"tag,omitempty"`
	Material       string            `json:"material,omitempty"`
	Versions       []SeedKeyVersion  `json:"versions,omitempty"`
	Memo           string            `json:"memo,omitempty"`
	Enabled        *bool             `json:"enabled,omitempty"`
	AutoRotation   *SeedAutoRotation `json:"autoRotation,omitempty"`
}

// SeedKeyVersion is the material of one version after the first.
type SeedKeyVersion struct {
	Material string `json:"material"`
}

// SeedAutoRotation is a key's auto rotation.
type SeedAutoRotation struct {
	Enabled    bool `json:"enabled"`
	PeriodDays int  `json:"periodDays,omitempty"`
}

// ExportSeed returns the declarations of the server (GET /nkms/v1/seed),
// for an operator (an admin of keystore 1). With material, it asks for
// every key version's material and every access key's secret in
// plaintext, which the server gives only when started with
// --allow-material-export (else an *Error with status 403). This is an nkms
// route; NAVER Cloud KMS does not have it.
func (c *Client) ExportSeed(ctx context.Context, material bool) (*Seed, error) {
	path := "/nkms/v1/seed"
	if material {
		path += "?material=true"
	}
	var s Seed
	if err := c.Do(ctx, http.MethodGet, path, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// String and GoString describe a without its secret, so that printing the
// value does not leak it.
func (a SeedAccessKey) String() string {
	return fmt.Sprintf("SeedAccessKey{AccessKey:%s Keystore:%d Role:%s}", a.AccessKey, a.Keystore, a.Role)
}

// GoString describes a without its secret.
func (a SeedAccessKey) GoString() string { return a.String() }

// String and GoString describe k without its material.
func (k SeedKey) String() string {
	return fmt.Sprintf("SeedKey{Keystore:%d Name:%s Type:%s Tag:%s}", k.Keystore, k.Name, k.Type, k.Tag)
}

// GoString describes k without its material.
func (k SeedKey) GoString() string { return k.String() }
