package nkms

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"

	"github.com/nkms/nkms/internal/crypto"
)

// SeedOutcome is what ApplySeed did with one declaration.
type SeedOutcome string

// Outcomes of ApplySeed.
const (
	SeedCreated SeedOutcome = "created" // it did not exist and was created
	SeedPresent SeedOutcome = "present" // it existed, its immutable properties as declared; left as it is
)

// SeedResult is the outcome of one declaration.
type SeedResult struct {
	Section string // "accessKeys" or "keys"
	Index   int
	Label   string // the declaration in words
	Tag     Tag    // the key's tag (keys only)
	Outcome SeedOutcome
	// Kept names the settings of an existing key that differ from the
	// declaration and were left as they are (name, memo, autoRotation,
	// periodDays, enabled, status).
	Kept []string
}

// SeedReport is what ApplySeed did, one result per declaration, access keys
// first, each in the order of the Seed.
type SeedReport struct {
	Results []SeedResult
}

// Count returns how many declarations had outcome o.
func (r SeedReport) Count(o SeedOutcome) int {
	n := 0
	for _, x := range r.Results {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// SeedConflict is a declaration that existing data contradicts: Field of
// the declaration is Declared, but is Existing in the store. Neither ever
// holds a secret or key material (both are "" for those: they differ).
type SeedConflict struct {
	Section, Label     string
	Index              int
	Field              string
	Existing, Declared string
}

func (c SeedConflict) String() string {
	s := fmt.Sprintf("%s[%d] (%s): %s: ", c.Section, c.Index, c.Label, c.Field)
	if c.Existing == "" && c.Declared == "" {
		return s + "differs from the existing one (not shown)"
	}
	return s + fmt.Sprintf("existing %s, declared %s", c.Existing, c.Declared)
}

// SeedConflictError is ApplySeed's answer when existing data contradicts
// the seed: every conflict, and nothing was applied. It matches
// errors.Is(err, &Error{Code: Conflict}).
type SeedConflictError struct {
	Conflicts []SeedConflict
}

func (e *SeedConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the seed conflicts with the existing data in %d place(s); nothing was applied:", len(e.Conflicts))
	for _, c := range e.Conflicts {
		b.WriteString("\n  " + c.String())
	}
	return b.String()
}

// Is makes the error a Conflict for errors.Is(err, &Error{Code: Conflict}).
func (e *SeedConflictError) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == Conflict
}

// seedPlan is what ApplySeed found and will write.
type seedPlan struct {
	report         SeedReport
	conflicts      []SeedConflict
	accessKeys     []*AccessKey // to create, sealed
	accessKeyIndex []int        // the declaration of each of accessKeys
	keys           []int        // indexes of the keys to create
}

// ApplySeed makes sure that the access keys and keys of sd exist, for the
// operator that starts the server (`nkms server --seed`): it is not an API
// operation and takes no Caller. It plans first: every declaration is read
// from the store and classified as present (its immutable properties match;
// settings the API changes are left as they are and listed in the report),
// absent, or conflicting. Any conflict is a *SeedConflictError listing every
// one, and nothing is written. Otherwise each absent access key is created,
// then each absent key, in one store write each (all its versions, sealed),
// so no key is ever half-written. Applying the same seed again changes
// nothing.
//
// A declared tag that does not exist is created, also when a key of that
// tag existed once and was destroyed: nkms keeps no record of destroyed
// tags. Plan and writes are not one transaction: when another node of a
// cluster applies the same seed at the same time, a write that finds its
// tag, name or access key taken makes ApplySeed plan again (up to
// seedAttempts plans), and the new plan finds that node's work present.
func (s *Service) ApplySeed(ctx context.Context, sd Seed) (SeedReport, error) {
	if err := sd.Validate(); err != nil {
		return SeedReport{}, err
	}
	// Another node of a cluster started with the same seed may create a
	// declaration between this plan and its write: the write then finds the
	// tag, name or access key taken, and a new plan sees what that node made
	// (the same declaration: present, or a conflict if it differs).
	created := map[[2]any]bool{} // section, index: created by this call
	for attempt := 1; ; attempt++ {
		p, err := s.planSeed(ctx, &sd)
		if err != nil {
			return SeedReport{}, err
		}
		if len(p.conflicts) > 0 {
			return SeedReport{}, &SeedConflictError{Conflicts: p.conflicts}
		}
		err = s.applySeedPlan(ctx, &sd, p, created)
		if err != nil && attempt < seedAttempts && isSeedRace(err) {
			s.log().InfoContext(ctx, "seed: another writer created a declaration at the same time; planning again", "err", err)
			continue
		}
		if err != nil {
			return SeedReport{}, err
		}
		for j := range p.report.Results {
			if r := &p.report.Results[j]; created[[2]any{r.Section, r.Index}] {
				r.Outcome = SeedCreated
			}
		}
		for _, r := range p.report.Results {
			if len(r.Kept) > 0 {
				s.log().WarnContext(ctx, "seed: an existing key's settings differ from the seed; left as they are",
					"declaration", fmt.Sprintf("%s[%d]", r.Section, r.Index), "keyTag", r.Tag, "settings", strings.Join(r.Kept, ","))
			}
		}
		return p.report, nil
	}
}

// seedAttempts is how many times ApplySeed plans when its writes race with
// another writer's.
const seedAttempts = 3

// isSeedRace reports whether a seed write failed because what it was to
// create appeared since the plan.
func isSeedRace(err error) bool {
	return errors.Is(err, ErrKeyExists) || errors.Is(err, ErrNameConflict) || errors.Is(err, ErrAccessKeyExists)
}

// applySeedPlan creates what p found absent, and marks each declaration it
// created in created.
func (s *Service) applySeedPlan(ctx context.Context, sd *Seed, p *seedPlan, created map[[2]any]bool) error {
	// Material first (RSA keys take a while to generate), then the writes.
	// A key kept in an HSM has a token object from here on: undo[n] deletes
	// it again unless keys[n] is stored.
	keys := make([]*Key, len(p.keys))
	undo := make([]func(), len(p.keys))
	stored := 0
	defer func() {
		for _, u := range undo[stored:] {
			if u != nil {
				u()
			}
		}
	}()
	for n, i := range p.keys {
		var err error
		if keys[n], undo[n], err = s.seedKey(&sd.Keys[i]); err != nil {
			return err
		}
	}
	for n, a := range p.accessKeys {
		if err := s.Store.CreateAccessKey(ctx, a); err != nil {
			return fmt.Errorf("seed: create access key %s: %w", a.ID, err)
		}
		created[[2]any{"accessKeys", p.accessKeyIndex[n]}] = true
		s.log().InfoContext(ctx, "seed: access key created", "accessKey", a.ID, "keystore", a.Keystore, "role", a.Role)
	}
	for n, i := range p.keys {
		k, err := s.Store.Create(ctx, keys[n])
		if err != nil {
			return fmt.Errorf("seed: create keys[%d] (%s): %w", i, sd.Keys[i].label(), err)
		}
		stored = n + 1
		created[[2]any{"keys", i}] = true
		s.keys.forget(k.Tag) // a destroyed key's tag may come back: never its old material
		for j := range p.report.Results {
			if r := &p.report.Results[j]; r.Section == "keys" && r.Index == i {
				r.Tag = k.KeyTag()
			}
		}
		s.log().InfoContext(ctx, "seed: key created", "keyTag", k.Tag, "keystore", k.Keystore, "name", k.Name,
			"type", k.Type, "versions", len(k.Versions))
	}
	return nil
}

// planSeed reads what exists and classifies every declaration.
func (s *Service) planSeed(ctx context.Context, sd *Seed) (*seedPlan, error) {
	p := &seedPlan{}
	for i, d := range sd.AccessKeys {
		label := fmt.Sprintf("accessKey %q", d.AccessKey)
		conflict := func(field, existing, declared string) {
			p.conflicts = append(p.conflicts, SeedConflict{Section: "accessKeys", Index: i, Label: label,
				Field: field, Existing: existing, Declared: declared})
		}
		old, err := s.Store.GetAccessKey(ctx, d.AccessKey)
		if errors.Is(err, ErrAccessKeyNotFound) {
			a, err := s.sealAccessKey(&Credentials{AccessKey: d.AccessKey, SecretKey: d.SecretKey, Keystore: d.Keystore, Role: d.Role})
			if err != nil {
				return nil, err
			}
			p.accessKeys = append(p.accessKeys, a)
			p.accessKeyIndex = append(p.accessKeyIndex, i)
			p.report.Results = append(p.report.Results, SeedResult{Section: "accessKeys", Index: i, Label: label, Outcome: SeedCreated})
			continue
		}
		if err != nil {
			return nil, err
		}
		n := len(p.conflicts)
		if old.Keystore != d.Keystore {
			conflict("keystore", fmt.Sprint(old.Keystore), fmt.Sprint(d.Keystore))
		}
		if old.Role != d.Role {
			conflict("role", string(old.Role), string(d.Role))
		}
		secret, err := s.Root.Open(old.SealedSecret, crypto.SealSecretAD(old.ID))
		if err != nil {
			return nil, fmt.Errorf("unseal secret of access key %s: %w", old.ID, err)
		}
		if !hmac.Equal(secret, []byte(d.SecretKey)) {
			conflict("secretKey", "", "")
		}
		clear(secret)
		if len(p.conflicts) == n {
			p.report.Results = append(p.report.Results, SeedResult{Section: "accessKeys", Index: i, Label: label, Outcome: SeedPresent})
		}
	}

	byName, err := s.seedNameIndex(ctx, sd)
	if err != nil {
		return nil, err
	}
	declaredTags := map[string]int{}
	for i, d := range sd.Keys {
		if !d.Tag.IsZero() {
			declaredTags[d.Tag.s] = i
		}
	}
	for i := range sd.Keys {
		d := &sd.Keys[i]
		conflict := func(field, existing, declared string) {
			p.conflicts = append(p.conflicts, SeedConflict{Section: "keys", Index: i, Label: d.label(),
				Field: field, Existing: existing, Declared: declared})
		}
		named := byName[seedNameKey(d.Keystore, d.Name)]
		var k *Key
		if !d.Tag.IsZero() {
			k, err = s.Store.Get(ctx, d.Tag.s)
			if errors.Is(err, ErrKeyNotFound) {
				if named != "" {
					conflict("name", "used by the key "+named, "for a new key with the tag "+d.Tag.s)
					continue
				}
				p.keys = append(p.keys, i)
				p.report.Results = append(p.report.Results, SeedResult{Section: "keys", Index: i, Label: d.label(), Tag: d.Tag, Outcome: SeedCreated})
				continue
			}
		} else {
			if named == "" {
				p.keys = append(p.keys, i)
				p.report.Results = append(p.report.Results, SeedResult{Section: "keys", Index: i, Label: d.label(), Outcome: SeedCreated})
				continue
			}
			if j, ok := declaredTags[named]; ok {
				conflict("name", "used by the key "+named+", which keys["+fmt.Sprint(j)+"] declares", "for a key of its own")
				continue
			}
			k, err = s.Store.Get(ctx, named)
		}
		if err != nil {
			return nil, err
		}
		n := len(p.conflicts)
		kept, err := s.compareSeedKey(d, k, conflict)
		if err != nil {
			return nil, err
		}
		if len(p.conflicts) == n {
			p.report.Results = append(p.report.Results, SeedResult{Section: "keys", Index: i, Label: d.label(), Tag: k.KeyTag(),
				Outcome: SeedPresent, Kept: kept})
		}
	}
	return p, nil
}

// seedNameKey is the key of a keystore's key name in seedNameIndex.
func seedNameKey(keystore int64, name string) string { return fmt.Sprint(keystore, "/", NameKey(name)) }

// seedNameIndex maps the names of the keys of every keystore that sd
// declares keys in to their tags. It lists those keystores whole.
func (s *Service) seedNameIndex(ctx context.Context, sd *Seed) (map[string]string, error) {
	out := map[string]string{}
	seen := map[int64]bool{}
	for _, d := range sd.Keys {
		if seen[d.Keystore] {
			continue
		}
		seen[d.Keystore] = true
		err := s.eachKey(ctx, d.Keystore, func(k *Key) {
			out[seedNameKey(k.Keystore, k.Name)] = k.Tag
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eachKey calls fn with every key of a keystore, page by page.
func (s *Service) eachKey(ctx context.Context, keystore int64, fn func(*Key)) error {
	const size = 500
	for page := 1; ; page++ {
		keys, total, err := s.Store.List(ctx, keystore, page, size)
		if err != nil {
			return err
		}
		for _, k := range keys {
			fn(k)
		}
		if len(keys) < size || page*size >= total {
			return nil
		}
	}
}

// compareSeedKey reports through conflict each immutable property in which
// k differs from d, and returns the settings that differ (kept as they are).
func (s *Service) compareSeedKey(d *SeedKey, k *Key, conflict func(field, existing, declared string)) (kept []string, err error) {
	if k.Keystore != d.Keystore {
		conflict("keystore", fmt.Sprint(k.Keystore), fmt.Sprint(d.Keystore))
	}
	if k.Type != d.Type {
		conflict("type", string(k.Type), string(d.Type))
	}
	if p := cmpOr(d.Protection, ProtectionBasic); k.Protection != p {
		conflict("protectionType", string(k.Protection), string(p))
	}
	if k.Convergent != d.Convergent {
		conflict("convergent", fmt.Sprint(k.Convergent), fmt.Sprint(d.Convergent))
	}
	if len(d.Material) > k.Current() {
		conflict("versions", fmt.Sprintf("%d version(s)", k.Current()), fmt.Sprintf("%d version(s)", len(d.Material)))
	} else if k.Type == d.Type {
		for i, m := range d.Material {
			v := &k.Versions[i]
			cur, err := s.Root.Open(v.Sealed, crypto.SealAD(k.Tag, v.Number))
			if err != nil {
				return nil, fmt.Errorf("unseal key %s version %d: %w", k.Tag, v.Number, err)
			}
			if !hmac.Equal(cur, m) {
				conflict(materialField(i+1), "", "")
			}
			clear(cur)
		}
	}
	if k.Name != d.Name {
		kept = append(kept, "name")
	}
	if k.Memo != d.Memo {
		kept = append(kept, "memo")
	}
	if k.AutoRotation != d.AutoRotation {
		kept = append(kept, "autoRotation.enabled")
	}
	if k.RotationPeriod != cmpOr(d.RotationPeriod, DefaultRotationPeriod) {
		kept = append(kept, "autoRotation.periodDays")
	}
	switch {
	case k.State == StateRevoke:
		kept = append(kept, "status (pending deletion)")
	case (k.State == StateDisable) != d.Disabled:
		kept = append(kept, "enabled")
	}
	return kept, nil
}

// cmpOr returns v, or def when v is the zero value.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// seedKey makes the key that d declares: its tag (declared or random), its
// versions' material (declared, or generated for version 1: in the token
// for a COMMON_HSM key on a server with an HSM) sealed under the root key,
// and its settings. The store assigns its ID. undo (nil: nothing to undo)
// deletes the token object again when the key is not stored.
func (s *Service) seedKey(d *SeedKey) (k *Key, undo func(), err error) {
	p := cmpOr(d.Protection, ProtectionBasic)
	if err := s.checkSeedProtection(p, len(d.Material) > 0); err != nil {
		return nil, nil, err
	}
	tag := d.Tag
	if tag.IsZero() {
		if tag, err = newTag(); err != nil {
			return nil, nil, err
		}
	}
	now := s.now()
	k = &Key{
		Tag: tag.s, Keystore: d.Keystore, Name: d.Name, Type: d.Type, Protection: p,
		Memo: d.Memo, Convergent: d.Convergent,
		State: StateEnable, StatusDate: now, Registered: now,
		AutoRotation: d.AutoRotation, RotationPeriod: cmpOr(d.RotationPeriod, DefaultRotationPeriod),
	}
	if d.Disabled {
		k.State = StateDisable
	}
	if d.AutoRotation {
		k.RotationBase = now
	}
	if len(d.Material) == 0 {
		sealed, undo, err := s.newVersion(d.Type, p, d.Convergent, tag, 1)
		if err != nil {
			return nil, nil, err
		}
		k.Versions = []Version{{Number: 1, State: StateEnable, StatusDate: now, Created: now, Sealed: sealed}}
		return k, undo, nil
	}
	for i, m := range d.Material {
		sealed, err := s.Root.Seal(m, crypto.SealAD(tag.s, i+1))
		if err != nil {
			return nil, nil, fmt.Errorf("seal key material: %w", err)
		}
		k.Versions = append(k.Versions, Version{Number: i + 1, State: StateEnable, StatusDate: now, Created: now, Sealed: sealed})
	}
	return k, nil, nil
}
