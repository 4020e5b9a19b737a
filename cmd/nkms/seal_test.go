package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
)

// TestSealUnseal: a file sealed with a KMS key comes back byte for byte,
// through files and through stdin/stdout; a changed or truncated sealed file
// is refused and leaves no --out file; a file that is not sealed is named as
// such.
func TestSealUnseal(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv)
	k, err := adminClient(t, p).CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "sealer", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain := make([]byte, 3<<20+12345) // several 64 KiB chunks and a short last one
	rand.Read(plain)
	in, sealed, back := filepath.Join(dir, "data"), filepath.Join(dir, "data.nkms"), filepath.Join(dir, "data.out")
	if err := os.WriteFile(in, plain, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) ([]byte, string, error) {
		cmd := exec.Command(binary, append(args, "--url", p.URL)...)
		cmd.Env = append(os.Environ(), credEnv...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.Bytes(), errb.String(), err
	}

	if _, e, err := run(nil, "seal", "--key", k.KeyTag, "--in", in, "--out", sealed); err != nil {
		t.Fatalf("seal: %v\n%s", err, e)
	}
	s, _ := os.ReadFile(sealed)
	if bytes.Contains(s, plain[:64]) || !bytes.HasPrefix(s, []byte("NKMSENV1")) {
		t.Fatal("the sealed file is not an envelope, or shows the plaintext")
	}
	if _, e, err := run(nil, "unseal", "--in", sealed, "--out", back); err != nil {
		t.Fatalf("unseal: %v\n%s", err, e)
	}
	if got, _ := os.ReadFile(back); !bytes.Equal(got, plain) {
		t.Fatal("unseal did not give back the file")
	}

	// stdin → stdout, both ways.
	viaPipe, e, err := run(plain[:1000], "seal", "--key", k.KeyTag)
	if err != nil {
		t.Fatalf("seal from stdin: %v\n%s", err, e)
	}
	if got, e, err := run(viaPipe, "unseal"); err != nil || !bytes.Equal(got, plain[:1000]) {
		t.Fatalf("unseal to stdout: %v %s", err, e)
	}

	// A flipped byte, or a cut, is refused, and --out is not created.
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, s[:len(s)/2]...), append([]byte{s[len(s)/2] ^ 1}, s[len(s)/2+1:]...)...),
		"truncated": s[:len(s)-100],
	} {
		badPath, outPath := filepath.Join(dir, name+".nkms"), filepath.Join(dir, name+".out")
		os.WriteFile(badPath, bad, 0o600)
		_, e, err := run(nil, "unseal", "--in", badPath, "--out", outPath)
		if err == nil || !strings.Contains(e, "corrupt, truncated or was changed") {
			t.Fatalf("%s sealed file: %v\n%s", name, err, e)
		}
		if _, err := os.Stat(outPath); !os.IsNotExist(err) {
			t.Fatalf("%s sealed file left %s behind (%v)", name, outPath, err)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "."+name+".out.*")); len(left) != 0 {
			t.Fatalf("%s sealed file left temporary files %v", name, left)
		}
	}
	if _, e, err := run([]byte("just some text\n"), "unseal"); err == nil || !strings.Contains(e, "not a file made by nkms seal") {
		t.Fatalf("unseal of a plain file: %v\n%s", err, e)
	}
	if _, e, err := run(nil, "seal", "--key", strings.Repeat("0", 64), "--in", in, "--out", filepath.Join(dir, "x")); err == nil ||
		!strings.Contains(e, "get a data key") {
		t.Fatalf("seal with a key that does not exist: %v\n%s", err, e)
	}
}

// TestSealLargeSparseFileFlatMemory seals a 2 GiB sparse file into a pipe
// and unseals it from the pipe, checking every byte that comes out and the
// peak memory (VmHWM) of both processes: it stays flat, whatever the size.
func TestSealLargeSparseFileFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 2 GiB")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc here")
	}
	t.Parallel()
	p := start(t, t.TempDir(), credEnv)
	k, err := adminClient(t, p).CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "big", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	const size = 2 << 30
	sparse := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	seal := exec.Command(binary, "seal", "--key", k.KeyTag, "--in", sparse, "--url", p.URL)
	unseal := exec.Command(binary, "unseal", "--url", p.URL)
	seal.Env, unseal.Env = append(os.Environ(), credEnv...), append(os.Environ(), credEnv...)
	pipe, err := seal.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	unseal.Stdin = pipe
	out, err := unseal.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var sealErr, unsealErr bytes.Buffer
	seal.Stderr, unseal.Stderr = &sealErr, &unsealErr
	if err := seal.Start(); err != nil {
		t.Fatal(err)
	}
	if err := unseal.Start(); err != nil {
		t.Fatal(err)
	}
	peak := map[string]int{}
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() { // sample peak RSS until both are done
		defer close(sampled)
		for {
			for name, c := range map[string]*exec.Cmd{"seal": seal, "unseal": unseal} {
				if kb := vmHWM(c.Process.Pid); kb > peak[name] {
					peak[name] = kb
				}
			}
			select {
			case <-done:
				return
			default:
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var n int64
	buf, zeros := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		m, err := out.Read(buf)
		if !bytes.Equal(buf[:m], zeros[:m]) {
			t.Fatalf("the unsealed sparse file has a byte that is not 0 in bytes %d to %d", n, n+int64(m))
		}
		n += int64(m)
		if err != nil {
			break
		}
	}
	errSeal, errUnseal := seal.Wait(), unseal.Wait()
	close(done)
	<-sampled
	if errSeal != nil || errUnseal != nil {
		t.Fatalf("seal: %v %s; unseal: %v %s", errSeal, sealErr.String(), errUnseal, unsealErr.String())
	}
	if n != size {
		t.Fatalf("unsealed %d bytes, want %d", n, size)
	}
	for name, kb := range peak {
		t.Logf("%s: peak RSS %d MiB for 2 GiB", name, kb/1024)
		if kb > 64<<10 {
			t.Errorf("%s: peak RSS %d MiB: memory grows with the file", name, kb/1024)
		}
	}
}

// vmHWM is the peak RSS of process pid in kB, or 0 when it is gone.
func vmHWM(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb
		}
	}
	return 0
}
