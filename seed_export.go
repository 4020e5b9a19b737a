package nkms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nkms/nkms/internal/crypto"
)

// ActExportSeed is the operation of ExportSeed.
const ActExportSeed Action = "ExportSeed"

// ErrMaterialExportOff refuses an export with material on a server that
// does not allow it (Service.AllowMaterialExport).
var ErrMaterialExportOff = &Error{Code: Forbidden,
	Message: "this server does not export key material or secrets; start it with --allow-material-export to allow it"}

// SeedExport is the seed of a running server, as ExportSeed writes it.
type SeedExport struct {
	Seed
	// Skipped says in words what the export left out: keys pending
	// deletion (REVOKE), which a seed would bring back as live keys.
	Skipped []string
}

// ExportSeed returns the declarations that make a fresh server hold what
// this one holds, for an operator (an admin of keystore 1, decisions.md
// D10): every access key, and every key of each keystore that has an
// access key, by tag, with its settings. With material, the export carries
// every version's key material and every access key's secret in plaintext:
// only when the server allows it (AllowMaterialExport), else
// ErrMaterialExportOff. Without it, secrets are "" and keys carry no
// material (a seed of it makes fresh material under the same tags).
//
// Keys pending deletion are left out (listed in Skipped); so are version
// states (a seed creates every version enabled) and ACLs, token generators
// and usage logs, which a seed does not declare.
func (s *Service) ExportSeed(ctx context.Context, c Caller, material bool) (*SeedExport, error) {
	if !c.operates(ActExportSeed) {
		return nil, errPermission("export the seed of the server: only an admin of keystore 1 may")
	}
	if material && !s.AllowMaterialExport {
		return nil, ErrMaterialExportOff
	}
	aks, err := s.Store.ListAccessKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := &SeedExport{}
	var keystores []int64
	for _, a := range aks {
		d := SeedAccessKey{AccessKey: a.ID, Keystore: a.Keystore, Role: a.Role}
		if material {
			secret, err := s.Root.Open(a.SealedSecret, crypto.SealSecretAD(a.ID))
			if err != nil {
				return nil, fmt.Errorf("unseal secret of access key %s: %w", a.ID, err)
			}
			d.SecretKey = string(secret)
			clear(secret)
		}
		out.AccessKeys = append(out.AccessKeys, d)
		if !slices.Contains(keystores, a.Keystore) {
			keystores = append(keystores, a.Keystore)
		}
	}
	slices.Sort(keystores)
	for _, ks := range keystores {
		var keys []*Key
		if err := s.eachKey(ctx, ks, func(k *Key) { keys = append(keys, k) }); err != nil {
			return nil, err
		}
		slices.Reverse(keys) // oldest first: the order they were made in
		for _, k := range keys {
			if k.State == StateRevoke {
				out.Skipped = append(out.Skipped, fmt.Sprintf("keystore %d, name %q, tag %s: pending deletion", k.Keystore, k.Name, k.Tag))
				continue
			}
			d := SeedKey{Keystore: k.Keystore, Name: k.Name, Type: k.Type, Protection: k.Protection, Convergent: k.Convergent,
				Tag: k.KeyTag(), Memo: k.Memo, AutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod,
				Disabled: k.State == StateDisable}
			if material {
				d.Material, err = s.exportMaterial(ctx, k)
				if errors.Is(err, ErrKeyNotFound) {
					continue // destroyed since it was listed
				}
				if errors.Is(err, errMaterialInHSM) {
					out.Skipped = append(out.Skipped, fmt.Sprintf("keystore %d, name %q, tag %s: %v", k.Keystore, k.Name, k.Tag, err))
					continue
				}
				if err != nil {
					return nil, err
				}
			}
			out.Keys = append(out.Keys, d)
		}
	}
	s.log().InfoContext(ctx, "seed exported", "by", c.AccessKey, "material", material,
		"accessKeys", len(out.AccessKeys), "keys", len(out.Keys))
	return out, nil
}

// errMaterialInHSM is why ExportSeed leaves out a key when asked for
// material: a version's material is in the token, which never gives it out.
var errMaterialInHSM = errors.New("kept in an HSM, whose material cannot be exported")

// exportMaterial unseals every version of k. A listed key may come without
// its versions, so it is read whole.
func (s *Service) exportMaterial(ctx context.Context, k *Key) ([][]byte, error) {
	full, err := s.Store.Get(ctx, k.Tag)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(full.Versions))
	for _, v := range full.Versions {
		m, err := s.Root.Open(v.Sealed, crypto.SealAD(full.Tag, v.Number))
		if err != nil {
			return nil, fmt.Errorf("unseal key %s version %d: %w", full.Tag, v.Number, err)
		}
		if _, ok := isHSMRef(m); ok {
			return nil, fmt.Errorf("version %d: %w", v.Number, errMaterialInHSM)
		}
		out = append(out, m)
	}
	return out, nil
}
