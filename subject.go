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

	// StreamEvents stores every Event on EventSubject (limits by age and
	// size; dedup window for Idempotency-Key retries).
	StreamEvents = "VIGIL_EVENTS"
	// EventSubjects is the subject filter of StreamEvents.
	EventSubjects = "vigil.event.>"
	// SubjectInEvent is the direct-NATS intake for events: a JSON Event, a
	// JSON array of them, or NDJSON, answered like POST /v1/events.
	SubjectInEvent = "vigil.in.event"

	// StreamDeliveries is the notifier's work queue: one message per
	// (alert, channel, target) delivery job, on DeliverySubject.
	StreamDeliveries = "VIGIL_DELIVERIES"
	// DeliverySubjects is the subject filter of StreamDeliveries.
	DeliverySubjects = "vigil.delivery.>"
	// StreamDeadLetters keeps delivery jobs that failed permanently or ran
	// out of attempts, on DeadLetterSubject, until retried or expired.
	StreamDeadLetters = "VIGIL_DEAD_LETTERS"
	// DeadLetterSubjects is the subject filter of StreamDeadLetters.
	DeadLetterSubjects = "vigil.dead.>"
	// StreamAttempts is the delivery history: one message per attempt
	// (time, channel, target, outcome, error, attempt number), on
	// AttemptSubject.
	StreamAttempts = "VIGIL_ATTEMPTS"
	// AttemptSubjects is the subject filter of StreamAttempts.
	AttemptSubjects = "vigil.attempt.>"
	// StreamToasts carries alerts for desktop toast targets on
	// ToastSubject; vigil-agent toast subscribes to its own target.
	StreamToasts = "VIGIL_TOASTS"
	// ToastSubjects is the subject filter of StreamToasts.
	ToastSubjects = "vigil.toast.>"
	// BucketDelivered holds a mark per delivery job that reached its
	// provider, keyed by the job id; a redelivered job that finds its mark is
	// acknowledged without sending again.
	BucketDelivered = "vigil_delivered"
	// BucketSilences holds the silences, keyed by silence id.
	BucketSilences = "vigil_silences"

	// StreamHostStats is the history of host stats, on HostStatsSubject.
	StreamHostStats = "VIGIL_HOST_STATS"
	// HostStatsSubjects is the subject filter of StreamHostStats.
	HostStatsSubjects = "vigil.host.stats.>"
	// BucketHosts holds the latest stats of each host, keyed by host token.
	BucketHosts = "vigil_hosts"
)

// NoService is the token used in subjects that always carry a service token
// when a message concerns no single service. Token returns it for no valid
// name.
const NoService = "_"

// EventSubject returns "vigil.event.<token>" for an event of service.
func EventSubject(service string) string { return "vigil.event." + Token(service) }

// DeliverySubject returns "vigil.delivery.<channel>" for a delivery job of
// channel type channel ("mail", "pushover", "webhook", "toast").
func DeliverySubject(channel string) string { return "vigil.delivery." + channel }

// DeadLetterSubject returns "vigil.dead.<channel>".
func DeadLetterSubject(channel string) string { return "vigil.dead." + channel }

// AttemptSubject returns "vigil.attempt.<channel>.<token>", with NoService
// for an alert about no single service.
func AttemptSubject(channel, service string) string {
	if service == "" {
		return "vigil.attempt." + channel + "." + NoService
	}
	return "vigil.attempt." + channel + "." + Token(service)
}

// ToastSubject returns "vigil.toast.<token>" for toast target (a desktop
// name, encoded with Token like a service name).
func ToastSubject(target string) string { return "vigil.toast." + Token(target) }

// HostStatsSubject returns "vigil.host.stats.<token>" for host id host.
func HostStatsSubject(host string) string { return "vigil.host.stats." + Token(host) }

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
