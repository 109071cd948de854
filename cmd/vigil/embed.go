package main

// A vigil image is FROM scratch: no /etc/ssl/certs and no /usr/share/zoneinfo.
// These imports compile both in. The fallback roots are used only when the
// system has none; the zone data only when the system has none.
import (
	_ "time/tzdata"

	_ "golang.org/x/crypto/x509roots/fallback"
)
