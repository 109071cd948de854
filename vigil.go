// Package vigil is the vocabulary of the vigil monitor: pulses, services and
// their statuses, alerts, the errors callers branch on, and the bus contract
// (the subject, stream and KV bucket names every role speaks).
//
// vigil is a heartbeat ("dead man's switch") monitor built on NATS JetStream:
//
//	clients ──HTTP POST /v1/pulses──► ingest ──JetStream──► KV vigil_pulses
//	clients ──NATS vigil.in.pulse───►   │                        │
//	                                    │                        ▼
//	                                    │            watchdog (one leader, hot standbys)
//	                                    │              │ KV vigil_services (verdicts)
//	                                    ▼              ▼
//	                            stream VIGIL_ALERTS ◄──┘
//	                                    │
//	                       notifier ◄───┴───► api (GET /v1/services, /metrics)
//
// Every type here is plain data with a Validate method and pure status logic
// (Service.StatusAt, Service.Deadline); the packages under services/ move it
// between HTTP, NATS and JetStream. See docs/architecture.md for the guarantees.
package vigil
