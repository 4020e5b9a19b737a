package crypto

import "testing"

func BenchmarkEncryptAES32B(b *testing.B) {
	k := keys(b).aes
	pt := make([]byte, 32)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Encrypt(pt, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptAESConvergent32B(b *testing.B) {
	k := keys(b).aesConv
	pt, ctx := make([]byte, 32), []byte("context")
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Encrypt(pt, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptAES32B(b *testing.B) {
	k := keys(b).aes
	body, err := k.Encrypt(make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decrypt(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptRSA32B(b *testing.B) {
	k := keys(b).rsa
	body, err := k.Encrypt(make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Decrypt(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRSA(b *testing.B) {
	benchmarkSign(b, keys(b).rsa)
}

func BenchmarkSignECDSA(b *testing.B) {
	benchmarkSign(b, keys(b).ec)
}

func BenchmarkVerifyRSA(b *testing.B) {
	benchmarkVerify(b, keys(b).rsa)
}

func BenchmarkVerifyECDSA(b *testing.B) {
	benchmarkVerify(b, keys(b).ec)
}

func benchmarkSign(b *testing.B, k *Key) {
	msg := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerify(b *testing.B, k *Key) {
	msg := make([]byte, 1024)
	sig, err := k.Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := k.Verify(msg, sig); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
