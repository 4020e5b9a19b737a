package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/atomicfile"
)

// devClockFile, in the data dir, holds the offset of --dev-clock as a Go
// duration ("72h0m0s"). Every advance writes it (atomically) before the
// clock moves, and a start with --dev-clock reads it, so that a restart on
// the same data dir keeps the moved clock: the dates already given to keys
// (destroyDate, nextRotationDate, token expiry) were set with it, and time
// must not jump back under them.
const devClockFile = "dev-clock"

// devClockWarning is printed on stderr at every start with --dev-clock.
const devClockWarning = `nkms: WARNING: --dev-clock is on. Not for production: any operator access key can move this server's clock
nkms: WARNING: forward (POST /nkms/v1/dev/clock, nkms dev advance), and every key whose deletion was requested is then
nkms: WARNING: destroyed at once. Use it only in tests, with keys that protect nothing.`

// openDevClock returns the clock of --dev-clock (nil without it), started
// at the offset saved in the data dir, and the notice to print for the
// operator: the warning of devClockWarning and the saved offset, or, when
// the flag is off but the data dir holds a moved clock, that the clock went
// back to the wall clock.
func openDevClock(cfg Config) (clock *nkms.DevClock, notice string, err error) {
	path := filepath.Join(cfg.DataDir, devClockFile)
	offset, err := readDevClock(path)
	if err != nil {
		return nil, "", err
	}
	if !cfg.DevClock {
		if offset > 0 {
			notice = fmt.Sprintf("nkms: warning: %s says a --dev-clock server ran %s ahead of the wall clock on this data dir; without --dev-clock the clock is the wall clock, behind the dates that server gave keys", path, offset)
		}
		return nil, notice, nil
	}
	clock, err = nkms.NewDevClock(time.Now, offset, func(d time.Duration) error {
		return atomicfile.WriteFile(path, []byte(d.String()+"\n"))
	})
	if err != nil {
		return nil, "", err
	}
	notice = devClockWarning
	if offset > 0 {
		notice += fmt.Sprintf("\nnkms: dev clock: %s ahead of the wall clock (saved in %s)", offset, path)
	}
	return clock, notice, nil
}

// readDevClock reads the offset saved in path; 0 when there is no file.
func readDevClock(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dev clock: %w", err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || d < 0 || d > nkms.MaxDevClockOffset {
		return 0, &hintError{fmt.Errorf("dev clock: %s does not hold an offset between 0s and %s", path, nkms.MaxDevClockOffset),
			"it is written by nkms server --dev-clock; delete it to start the clock at the wall clock again"}
	}
	return d, nil
}
