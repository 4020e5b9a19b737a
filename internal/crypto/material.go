package crypto

// ValidateMaterial checks that material is what GenerateMaterial makes for
// alg: 32 bytes for AES256, the PKCS#8 DER of a 2048-bit RSA private key for
// RSA2048, of a P-256 private key for ECDSA. Its error never contains the
// material. It is for material given from outside (declared keys), so that a
// bad one is refused before it is sealed and stored.
func ValidateMaterial(alg Algorithm, material []byte) error {
	_, err := LoadKey(alg, false, material)
	return err
}
