package hsm

// EME-OAEP decoding (RFC 8017, section 7.1.2, step 3) with SHA-256 and
// MGF1-SHA-256, for tokens whose CKM_RSA_PKCS_OAEP does not take SHA-256
// (SoftHSM2 2.6 takes only SHA-1): the token runs the raw private-key
// operation (CKM_RSA_X_509) and nkms removes the padding here. It follows
// the standard library's crypto/rsa decryptOAEP: every check runs whatever
// the secret bytes are, the results are combined with crypto/subtle, and
// every failure is the one crypto.ErrDecrypt, so that neither the error nor
// the time taken tells which check failed (no Manger oracle).

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"

	"github.com/nkms/nkms/internal/crypto"
)

// decodeOAEP removes EME-OAEP padding (SHA-256, MGF1-SHA-256, label) from
// em, the k-byte output of the raw RSA private-key operation, and returns
// the message, a subslice of em. It overwrites em. Every failure is
// crypto.ErrDecrypt. len(em) and k are public (the modulus size); the
// contents of em are secret and decide nothing but the final result.
func decodeOAEP(em []byte, k int, label []byte) ([]byte, error) {
	hLen := sha256.Size
	if len(em) != k || k < 2*hLen+2 {
		return nil, crypto.ErrDecrypt
	}
	lHash := sha256.Sum256(label)

	firstByteIsZero := subtle.ConstantTimeByteEq(em[0], 0)
	seed := em[1 : hLen+1]
	db := em[hLen+1:]
	h := sha256.New()
	mgf1XOR(seed, h, db)
	mgf1XOR(db, h, seed)

	lHashGood := subtle.ConstantTimeCompare(lHash[:], db[:hLen])

	// The message follows the first 0x01 after lHash; only zeros may come
	// before it. The loop runs over all of rest whatever it holds.
	var lookingForIndex, index, invalid int
	lookingForIndex = 1
	rest := db[hLen:]
	for i := 0; i < len(rest); i++ {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, crypto.ErrDecrypt
	}
	return rest[index+1:], nil
}

// mgf1XOR XORs out with MGF1(seed) using hash h (RFC 8017, B.2.1).
func mgf1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
}

// leftPad returns out as exactly k bytes: a token may drop the leading zero
// bytes of the raw RSA result (a number), never add any. A longer output is
// crypto.ErrDecrypt. The length of out says at most how many leading bytes
// of the result are zero, which the token's own timing tells as well;
// decodeOAEP treats the padded result as it treats any other.
func leftPad(out []byte, k int) ([]byte, error) {
	switch {
	case len(out) == k:
		return out, nil
	case len(out) > k:
		return nil, crypto.ErrDecrypt
	}
	em := make([]byte, k)
	copy(em[k-len(out):], out)
	clear(out)
	return em, nil
}
