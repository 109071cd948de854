package vigil

import "time"

// Toast is the JSON body of a message on ToastSubject(target) in stream
// StreamToasts: the contract between the notifier's toast channel and
// vigil-agent toast, the desktop that shows it.
//
//	{"id": "…", "title": "backup is down", "body": "…", "level": 3,
//	 "url": "https://…", "at": "2026-01-02T03:04:05Z", "service": "backup",
//	 "services": ["a", "b"]}
//
// ID is stable per (alert, desktop) and is also the message's Nats-Msg-Id,
// so a desktop that sees an id twice shows it once. Level is vigil's
// numeric level (0 debug … 4 critical). At is when the alert was raised.
// Service is set for a message about one service; Services lists the
// services of a grouped mass outage (at most MaxToastServices).
type Toast struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Body     string    `json:"body"`
	Level    Level     `json:"level"`
	URL      string    `json:"url,omitempty"`
	At       time.Time `json:"at"`
	Service  string    `json:"service,omitempty"`
	Services []string  `json:"services,omitempty"`
}

// MaxToastServices caps Toast.Services.
const MaxToastServices = 100
