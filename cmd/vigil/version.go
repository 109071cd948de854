package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/nats-io/nats-server/v2/server"
)

// printVersion writes vigil's version (the main module's version and, when
// built from a git checkout, its revision), the Go version and the version
// of the embedded nats-server.
func printVersion(w io.Writer) {
	version, rev, modified := "(devel)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(w, "vigil %s", version)
	if rev != "" {
		fmt.Fprintf(w, " (revision %s", rev)
		if modified {
			fmt.Fprint(w, ", modified")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, "\n%s %s/%s\nnats-server v%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, server.VERSION)
}
