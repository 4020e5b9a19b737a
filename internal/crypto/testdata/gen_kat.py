#!/usr/bin/env python3
"""Writes kat.json: known answers for internal/crypto computed with pyca/cryptography,
an implementation independent of Go's. Run: python3 gen_kat.py > kat.json
(it draws fresh keys, so every run gives different but equally valid answers)."""
import base64, hashlib, hmac, json, os, struct
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

def hkdf(secret, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)

def pkcs8(k):
    return k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())

def spki_pem(k):
    return k.public_key().public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()

out = {}

root = os.urandom(32)
nonce = os.urandom(12)
ad = b"k-0123456789abcdef:7"
pt = b"sealed key material"
sealed = b"\x01" + nonce + AESGCM(hkdf(root, b"nkms seal v1")).encrypt(nonce, pt, ad)
out["root"] = {"file": base64.b64encode(root).decode() + "\n", "ad": ad.decode(),
               "plaintext": pt.hex(), "sealed": sealed.hex()}

m = os.urandom(32)
ctx, pt = b"customer-42", b"convergent plaintext"
mac = hmac.new(hkdf(m, b"nkms convergent nonce v1"), struct.pack(">I", len(ctx)) + ctx + pt,
               hashlib.sha256).digest()
n = mac[:12]
out["aes_convergent"] = {"material": m.hex(), "context": ctx.hex(), "plaintext": pt.hex(),
                         "body": (n + AESGCM(m).encrypt(n, pt, ctx)).hex()}

m = os.urandom(32)
n = os.urandom(12)
pt = b"random-nonce plaintext"
out["aes"] = {"material": m.hex(), "plaintext": pt.hex(), "body": (n + AESGCM(m).encrypt(n, pt, None)).hex()}

k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pt, msg = b"rsa plaintext", b"message signed by pyca"
oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=222)
out["rsa"] = {"material": pkcs8(k).hex(), "public_pem": spki_pem(k), "plaintext": pt.hex(),
              "body": k.public_key().encrypt(pt, oaep).hex(), "msg": msg.hex(),
              "sig": k.sign(msg, pss, hashes.SHA256()).hex()}

k = ec.generate_private_key(ec.SECP256R1())
msg = b"message signed by pyca"
out["ecdsa"] = {"material": pkcs8(k).hex(), "public_pem": spki_pem(k), "msg": msg.hex(),
                "sig": k.sign(msg, ec.ECDSA(hashes.SHA256())).hex()}

print(json.dumps(out, indent=2))
