package server

import (
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/testkit"
)

func TestLogBufferDeliversWholeLinesInOrder(t *testing.T) {
	out := &testkit.Buffer{}
	b := newLogBuffer(out)
	var want strings.Builder
	for i := range 5000 { // more than logBufferSize: some writes go through at once
		line := strings.Repeat("x", i%97) + "\n"
		want.WriteString(line)
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	huge := strings.Repeat("y", logBufferSize+1) + "\n"
	want.WriteString(huge)
	b.Write([]byte(huge))
	b.Write([]byte("last\n"))
	want.WriteString("last\n")
	// The timer alone delivers the rest.
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != want.String() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the writer has %d bytes, want %d", len(out.String()), want.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Write([]byte("after\n"))
	b.Flush()
	if !strings.HasSuffix(out.String(), "last\nafter\n") {
		t.Fatal("Flush did not write the queued line")
	}
}
