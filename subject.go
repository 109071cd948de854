package vigil

// The bus contract: every subject, stream and KV bucket vigil uses. Service
// names enter subjects and keys only through Token.
const (
	// BucketPulses holds each service's last Record (History 1). Ingest writes
	// it with a plain JetStream publish to PulseSubject; the watchdog and the
	// API read it.
	BucketPulses = "vigil_pulses"
	// BucketServices holds each service's Verdict. Only the watchdog leader
	// writes it, with compare-and-set on the key's revision.
	BucketServices = "vigil_services"
	// BucketLeases holds the watchdog leader lease; its max age is the lease TTL.
	BucketLeases = "vigil_leases"
	// BucketRuntime holds vigil's own liveness marks (KeyWatchdogAlive), used
	// to tell a monitoring gap from real deaths.
	BucketRuntime = "vigil_runtime"

	// KeyWatchdogLease is the lease key in BucketLeases.
	KeyWatchdogLease = "watchdog"
	// KeyWatchdogAlive is the liveness mark in BucketRuntime.
	KeyWatchdogAlive = "watchdog-alive"

	// StreamAlerts stores every Alert on AlertSubject.
	StreamAlerts = "VIGIL_ALERTS"
	// AlertSubjects is the subject filter of StreamAlerts.
	AlertSubjects = "vigil.alert.>"

	// SubjectInPulse is the direct-NATS intake for pulses: a JSON Pulse, a
	// JSON array of them, or NDJSON. Send it as a request to get the same
	// JSON answer as POST /v1/pulses; headers Idempotency-Key or Nats-Msg-Id
	// make retries safe.
	SubjectInPulse = "vigil.in.pulse"
	// SubjectInCancel is the direct-NATS intake for cancels: {"service": …}.
	SubjectInCancel = "vigil.in.cancel"
	// SubjectInAlert is the direct-NATS intake for manual alerts (ManualAlert).
	SubjectInAlert = "vigil.in.alert"
	// IngestQueue is the queue group ingest replicas share on the intake subjects.
	IngestQueue = "vigil-ingest"
)

// PulseSubject returns the JetStream subject of a service's Record in
// BucketPulses: "$KV.vigil_pulses.<token>".
func PulseSubject(service string) string { return "$KV." + BucketPulses + "." + Token(service) }

// AlertSubject returns "vigil.alert.<kind>.<token>", or "vigil.alert.<kind>"
// for an alert about no single service.
func AlertSubject(kind AlertKind, service string) string {
	if service == "" {
		return "vigil.alert." + string(kind)
	}
	return "vigil.alert." + string(kind) + "." + Token(service)
}
