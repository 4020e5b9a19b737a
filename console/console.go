// Package console is nkms's web console: static files, embedded in the
// binary, that run in the browser and call the API like any other client
// (requests signed in the browser with WebCrypto). It needs no server-side
// state and no network access beyond the nkms server itself.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console under /console/.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return http.StripPrefix("/console/", http.FileServerFS(files))
}
