package nkms

// COMMON_HSM keys in a PKCS#11 token (issue 18). The Service sees the token
// through the HSM interface (internal/hsm implements it). A version of a
// COMMON_HSM key made with an HSM has no material in the store: its Sealed
// field holds a token reference — hsmRefMagic ‖ the object's CKA_ID —
// sealed under the root key with the version's usual associated data, so
// that a reference can neither be read nor moved to another key or version
// by someone who can write the store.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nkms/nkms/internal/crypto"
)

// HSM is a PKCS#11 token that keeps COMMON_HSM key versions.
type HSM interface {
	// Generate makes a new non-extractable key of type alg in the token,
	// with CKA_ID id and CKA_LABEL label; a convergent AES256 key gets an
	// HMAC key object for its nonces too, with the same id and label.
	Generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error
	// Load returns the key with CKA_ID id, its secret operations running in the token.
	Load(alg crypto.Algorithm, convergent bool, id []byte) (*crypto.Key, error)
	// Destroy deletes every key object with CKA_ID id; none is not an error.
	Destroy(id []byte) error
	// Objects lists the token's nkms key objects.
	Objects() ([]HSMObject, error)
}

// HSMMonitor is what an HSM may implement as well, to learn how its token
// fares (internal/server watches the token so: nkms_hsm_up, a log line when
// the token stops or starts answering again).
type HSMMonitor interface {
	// Check asks the token now whether it answers: nil if it does.
	Check() error
	// Observe records the outcome of op (encrypt, decrypt, sign) done with a
	// token key outside the HSM interface: nil, or a failure of the token
	// itself, never one of the input (a decryption that fails).
	Observe(op string, err error)
	// Missing records a request for a key version whose object the token
	// does not have.
	Missing(tag string, version int)
}

// ErrHSMNoObject is what an HSM's Load returns (wrapped) when the token has
// no key object with the id.
var ErrHSMNoObject = errors.New("the token has no such key object")

// ErrHSMUnavailable answers an operation on a COMMON_HSM key whose token
// failed or did not answer (a lost session, a module error, a token that
// was removed): a failure of the server, never of the request, and one that
// BASIC keys do not share. The API answers 503.
var ErrHSMUnavailable = &Error{Code: Unavailable, Message: "the HSM that keeps this key's versions did not answer; retry later"}

// errHSMUnavailable is ErrHSMUnavailable with the token's error for the log.
func errHSMUnavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrHSMUnavailable, op, err)
}

// errHSMMissing answers a use of version n of a key whose token object this
// server's token does not have: a node started with another token than the
// other nodes, or a token whose contents were lost. The token answers, so
// this is not ErrHSMUnavailable; it is not a bad request either.
func errHSMMissing(n int, err error) error {
	return &Error{Code: Unavailable, Err: err, Message: fmt.Sprintf("key version %d is kept in an HSM object this server's token does not have "+
		"(every node needs the same token contents)", n)}
}

// hsmMonitor returns s.HSM as an HSMMonitor, or nil.
func (s *Service) hsmMonitor() HSMMonitor {
	m, _ := s.HSM.(HSMMonitor)
	return m
}

// HSMObject is one key object in the token: its CKA_ID and CKA_LABEL.
type HSMObject struct {
	ID    []byte
	Label string
}

// hsmRefMagic starts the (sealed) token reference of a version kept in an
// HSM. No generated material starts with it: AES256 material is 32 bytes
// (a reference is 36), RSA2048 and ECDSA material
// is PKCS#8 DER, which starts with 0x30.
const hsmRefMagic = "nkms-hsm-ref-v1:"

// hsmIDSize is the length of a token object's CKA_ID: random bytes.
const hsmIDSize = 20

func hsmRef(id []byte) []byte { return append([]byte(hsmRefMagic), id...) }

// isHSMRef reports whether opened material m is a token reference, and
// returns the object id.
func isHSMRef(m []byte) ([]byte, bool) {
	if len(m) != len(hsmRefMagic)+hsmIDSize || !bytes.HasPrefix(m, []byte(hsmRefMagic)) {
		return nil, false
	}
	return m[len(hsmRefMagic):], true
}

// hsmSweepGrace is how old an unreferenced token object must be before the
// start-up sweep deletes it: younger ones may belong to a create or
// rotation still running on another node (a shared store), whose key
// record is not yet written.
const hsmSweepGrace = time.Hour

// inHSM reports whether new versions of k's kind are made in the token.
func (s *Service) inHSM(p Protection) bool { return p == ProtectionCommonHSM && s.HSM != nil }

// checkProtection refuses a COMMON_HSM key that this server cannot keep in
// an HSM (issue 18: no silent downgrade): without one, unless the operator
// chose software emulation (--hsm-emulate-software, --dev).
func (s *Service) checkProtection(p Protection) error {
	if p != ProtectionCommonHSM {
		return nil
	}
	if s.HSM == nil && !s.HSMEmulate {
		return FieldErrorf("protectionType", "COMMON_HSM keys need an HSM and this server has none; "+
			"create a BASIC key, or ask the operator to configure one")
	}
	return nil
}

// checkSeedProtection refuses a declared key (seed files) that would not
// be what it says. A COMMON_HSM key is made in the token when the server has
// an HSM, in software when it emulates one, and refused otherwise; declared
// material (hasMaterial) cannot be put in an HSM, whose keys are generated
// there and never imported.
func (s *Service) checkSeedProtection(p Protection, hasMaterial bool) error {
	switch {
	case p != ProtectionCommonHSM:
		return nil
	case s.HSM != nil && hasMaterial:
		return Errorf(Invalid, "a declared COMMON_HSM key cannot have material: keys in the HSM are generated there, never imported; leave out material (and versions), or declare BASIC")
	case s.HSM == nil && !s.HSMEmulate:
		return Errorf(Invalid, "declared COMMON_HSM keys need an HSM (--hsm-module, --hsm-token), or --hsm-emulate-software or --dev to keep them in software; declare BASIC")
	}
	return nil
}

// newVersion makes the material of version n of key tag: sealed software
// material, or for a COMMON_HSM key on a server with an HSM a new token
// object and its sealed reference. undo deletes that object again when the
// version is not stored after all (nil: nothing to undo).
func (s *Service) newVersion(t KeyType, p Protection, convergent bool, tag Tag, n int) (sealed []byte, undo func(), err error) {
	if !s.inHSM(p) {
		sealed, err = s.newMaterial(t, tag, n)
		return sealed, nil, err
	}
	id, err := crypto.RandomBytes(hsmIDSize)
	if err != nil {
		return nil, nil, err
	}
	label := fmt.Sprintf("%s%s:v%d:%d", hsmLabelPrefix, tag.s, n, s.Now().UnixMilli())
	kind := hsmKind{t, convergent}
	if _, no := s.hsmUnsupported.Load(kind); no {
		return nil, nil, errHSMType(kind)
	}
	if err := s.HSM.Generate(crypto.Algorithm(t), convergent, id, label); err != nil {
		if errors.Is(err, crypto.ErrUnsupported) {
			s.hsmUnsupported.Store(kind, true)
			s.log().Warn("the HSM cannot keep keys of this type: COMMON_HSM keys of it are refused", "type", t, "convergent", convergent, "err", err)
			return nil, nil, errHSMType(kind)
		}
		return nil, nil, errHSMUnavailable("generate a key", err)
	}
	undo = func() {
		if err := s.HSM.Destroy(id); err != nil {
			s.log().Error("deleting an unused HSM key object failed; the start-up sweep will retry", "keyTag", tag.s, "version", n, "err", err)
		}
	}
	sealed, err = s.Root.Seal(hsmRef(id), crypto.SealAD(tag.s, n))
	if err != nil {
		undo()
		return nil, nil, fmt.Errorf("seal the HSM reference: %w", err)
	}
	return sealed, undo, nil
}

// hsmKind is what a token may be unable to keep: a key type, and for
// AES256 whether convergent (those need an HMAC key and CKM_SHA256_HMAC
// besides AES-GCM).
type hsmKind struct {
	t          KeyType
	convergent bool
}

// errHSMType refuses a COMMON_HSM key of a kind the HSM cannot keep (it
// lacks a mechanism the kind needs, found when the first one was made).
func errHSMType(k hsmKind) error {
	what := string(k.t)
	if k.convergent {
		what = "convergent " + what
	}
	return FieldErrorf("keyType", "this server's HSM does not support COMMON_HSM %s keys; create a BASIC key", what)
}

// hsmLabelPrefix starts the CKA_LABEL of nkms's token objects:
// "nkms:<keyTag>:v<version>:<Unix milliseconds of creation>".
const hsmLabelPrefix = "nkms:"

// loadVersion turns opened material m of version n of k into a crypto.Key:
// software material is parsed; a token reference is looked up in the HSM.
func (s *Service) loadVersion(k *Key, n int, m []byte) (*crypto.Key, error) {
	id, ok := isHSMRef(m)
	if !ok {
		return crypto.LoadKey(crypto.Algorithm(k.Type), k.Convergent, m)
	}
	if s.HSM == nil {
		return nil, fmt.Errorf("version %d is kept in an HSM and this server has none", n)
	}
	ck, err := s.HSM.Load(crypto.Algorithm(k.Type), k.Convergent, id)
	switch {
	case err == nil:
		return ck, nil
	case errors.Is(err, ErrHSMNoObject):
		if m := s.hsmMonitor(); m != nil {
			m.Missing(k.Tag, n)
		}
		return nil, errHSMMissing(n, err)
	case errors.Is(err, crypto.ErrUnsupported):
		return nil, err
	}
	return nil, errHSMUnavailable("find the key object", err)
}

// tokenResult passes on the outcome err of crypto operation op (encrypt,
// decrypt, sign) of vk. For a key in a token, a failure is told apart here:
// the token failed or no longer has the version's object (an Unavailable
// error: 503), or — only for a decryption whose object is still there and
// whose token answers — the input was bad (crypto.ErrDecrypt, unchanged).
// The check after a failed decryption asks the token again for the object,
// whatever the input was, so its answer says nothing about the ciphertext.
func (vk *versionKey) tokenResult(op string, err error) error {
	if !vk.ck.InToken() {
		return err
	}
	s := vk.s
	mon := s.hsmMonitor()
	if err == nil {
		if mon != nil {
			mon.Observe(op, nil)
		}
		return nil
	}
	var domain *Error
	if errors.As(err, &domain) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Load the version's object again: a cached key may hold a handle the
	// token no longer knows (a token that lost or was given other contents,
	// a module that was reset). A fresh key takes the cached one's place.
	if lerr := s.reloadVersion(vk.key, vk.version); lerr != nil {
		return lerr
	}
	if errors.Is(err, crypto.ErrDecrypt) {
		return err
	}
	if mon != nil {
		mon.Observe(op, err)
	}
	return errHSMUnavailable(op, err)
}

// reloadVersion loads version n of k from the token again and keeps the
// result in the key cache; when that fails, the key's cached versions are
// dropped and the error (Unavailable, as loadVersion's) returned.
func (s *Service) reloadVersion(k *Key, n int) error {
	v, err := k.CryptoVersion(n)
	if err != nil {
		return err
	}
	m, err := s.Root.Open(v.Sealed, crypto.SealAD(k.Tag, n))
	if err != nil {
		return fmt.Errorf("unseal %s v%d: %w", k.Tag, n, err)
	}
	ck, err := s.loadVersion(k, n, m)
	clear(m)
	if err != nil {
		s.keys.forget(k.Tag)
		return err
	}
	s.keys.put(k.Tag, n, ck)
	return nil
}

// hsmIDs returns the token object ids that k's versions refer to.
func (s *Service) hsmIDs(k *Key) [][]byte {
	var ids [][]byte
	if k.Protection != ProtectionCommonHSM {
		return nil
	}
	for _, v := range k.Versions {
		m, err := s.Root.Open(v.Sealed, crypto.SealAD(k.Tag, v.Number))
		if err != nil {
			continue
		}
		if id, ok := isHSMRef(m); ok {
			ids = append(ids, bytes.Clone(id))
		}
		clear(m)
	}
	return ids
}

// deleteKey removes key tag from the store when check allows it, and then
// at once deletes the token objects of its versions. A crash between the two
// leaves objects that no key refers to; SweepHSM deletes them at the next
// start-up.
func (s *Service) deleteKey(ctx context.Context, tag string, check func(*Key) error) error {
	var ids [][]byte
	err := s.Store.Delete(ctx, tag, func(k *Key) error {
		if err := check(k); err != nil {
			return err
		}
		ids = nil
		if k.Protection == ProtectionCommonHSM {
			ids = s.hsmIDs(k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.keys.forget(tag)
	if len(ids) > 0 && s.HSM == nil {
		s.log().ErrorContext(ctx, "the destroyed key's versions are in an HSM and this server has none: its objects stay in the token", "keyTag", tag)
		return nil
	}
	for _, id := range ids {
		if err := s.HSM.Destroy(id); err != nil {
			s.log().ErrorContext(ctx, "deleting the HSM objects of a destroyed key failed; the start-up sweep will retry", "keyTag", tag, "err", err)
		}
	}
	return nil
}

// HSMReport is what StartHSM found.
type HSMReport struct {
	SoftwareKeys  int // COMMON_HSM keys with versions kept in software (made before issue 18, or emulated)
	TokenVersions int // key versions kept in the HSM
	Missing       int // of those, versions whose object this token does not have (another token than the other nodes'?)
	Swept         int // token objects no key refers to, deleted
}

// StartHSM checks the COMMON_HSM keys at start-up: it counts those kept in
// software and the versions kept in the token, refuses to start when
// versions are in an HSM but none is configured, and with an HSM deletes
// the token objects that no key refers to (SweepHSM). It reads the keys of
// every keystore that has an access key.
func (s *Service) StartHSM(ctx context.Context) (HSMReport, error) {
	var r HSMReport
	aks, err := s.Store.ListAccessKeys(ctx)
	if err != nil {
		return r, err
	}
	var refs [][]byte // the token objects the keys refer to
	seen := map[int64]bool{}
	for _, a := range aks {
		if seen[a.Keystore] {
			continue
		}
		seen[a.Keystore] = true
		for page := 1; ; page++ {
			keys, _, err := s.Store.List(ctx, a.Keystore, page, MaxPageSize)
			if err != nil {
				return r, err
			}
			for _, k := range keys {
				if k.Protection != ProtectionCommonHSM {
					continue
				}
				full, err := s.Store.Get(ctx, k.Tag)
				if err != nil {
					continue // deleted meanwhile
				}
				ids := s.hsmIDs(full)
				r.TokenVersions += len(ids)
				refs = append(refs, ids...)
				if len(ids) < len(full.Versions) {
					r.SoftwareKeys++
				}
			}
			if len(keys) < MaxPageSize {
				break
			}
		}
	}
	if r.TokenVersions > 0 && s.HSM == nil {
		return r, fmt.Errorf("%d COMMON_HSM key versions are kept in an HSM and no HSM is configured (--hsm-module, --hsm-token)", r.TokenVersions)
	}
	if s.HSM != nil {
		// The token is listed after the keys were read: a version made
		// meanwhile by another node has its object before its key record,
		// so only a key destroyed meanwhile can be counted missing wrongly.
		objs, err := s.HSM.Objects()
		if err != nil {
			return r, fmt.Errorf("list the HSM's objects: %w", err)
		}
		r.Missing = missingObjects(refs, objs)
		r.Swept, err = s.sweepHSM(ctx, objs)
		return r, err
	}
	return r, nil
}

// missingObjects counts the ids of refs that objs has no object of.
func missingObjects(refs [][]byte, objs []HSMObject) int {
	have := map[string]bool{}
	for _, o := range objs {
		have[string(o.ID)] = true
	}
	n := 0
	for _, id := range refs {
		if !have[string(id)] {
			n++
		}
	}
	return n
}

// SweepHSM deletes the nkms token objects that no key refers to and that
// are older than hsmSweepGrace, and returns how many versions' objects it
// deleted: those of a key destroyed by a process that
// stopped before deleting them, or made for a version that was never
// stored. It decides from each object's label (the key tag) and the key's
// sealed references, never from a list of all keys.
func (s *Service) SweepHSM(ctx context.Context) (int, error) {
	objs, err := s.HSM.Objects()
	if err != nil {
		return 0, fmt.Errorf("list the HSM's objects: %w", err)
	}
	return s.sweepHSM(ctx, objs)
}

// sweepHSM is SweepHSM over the listed objects objs.
func (s *Service) sweepHSM(ctx context.Context, objs []HSMObject) (int, error) {
	refs := map[string][][]byte{} // keyTag -> ids its versions refer to
	gone := map[string]bool{}     // ids deleted (a convergent version has two objects)
	swept := 0
	for _, o := range objs {
		if gone[string(o.ID)] {
			continue
		}
		tag, _, created, ok := parseHSMLabel(o.Label)
		if !ok || s.Now().Sub(created) < hsmSweepGrace {
			continue
		}
		ids, read := refs[tag]
		if !read {
			k, err := s.Store.Get(ctx, tag)
			switch {
			case errors.Is(err, ErrKeyNotFound):
			case err != nil:
				return swept, err
			default:
				ids = s.hsmIDs(k)
			}
			refs[tag] = ids
		}
		if slices.ContainsFunc(ids, func(id []byte) bool { return bytes.Equal(id, o.ID) }) {
			continue
		}
		if err := s.HSM.Destroy(o.ID); err != nil {
			return swept, fmt.Errorf("delete an orphaned HSM object of key %s: %w", tag, err)
		}
		swept++
		gone[string(o.ID)] = true
		s.log().InfoContext(ctx, "deleted an HSM key object that no key refers to", "keyTag", tag, "label", o.Label)
	}
	return swept, nil
}

// parseHSMLabel reads "nkms:<keyTag>:v<version>:<Unix ms>" exactly as
// newVersion writes it (canonical decimals, a non-empty tag without ':').
func parseHSMLabel(label string) (tag string, version int, created time.Time, ok bool) {
	parts := strings.Split(label, ":")
	if len(parts) != 4 || parts[0]+":" != hsmLabelPrefix || parts[1] == "" {
		return "", 0, time.Time{}, false
	}
	v, verr := strconv.Atoi(strings.TrimPrefix(parts[2], "v"))
	ms, merr := strconv.ParseInt(parts[3], 10, 64)
	if verr != nil || merr != nil || v < 1 || "v"+strconv.Itoa(v) != parts[2] || strconv.FormatInt(ms, 10) != parts[3] {
		return "", 0, time.Time{}, false
	}
	return parts[1], v, time.UnixMilli(ms), true
}
