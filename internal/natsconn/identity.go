package natsconn

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-monitor/vigil"
)

// Permissions are the publish and subscribe allow lists of one NATS
// identity, in nats-server's terms (authorization.users[].permissions):
// anything not listed is denied. AllowResponses lets the identity answer
// the requests it receives (one reply each), whatever their reply subject.
type Permissions struct {
	Publish        []string
	Subscribe      []string
	AllowResponses bool
}

// Roles are the server roles that have a NATS identity, in the order the
// configuration examples list them.
var Roles = []string{"ingest", "watchdog", "notifier", "api"}

// RoleInbox returns the reply-subject prefix of role's connections,
// "_INBOX.<role>": its identity may subscribe to its own replies only, so
// no role reads another's JetStream API answers.
func RoleInbox(role string) string { return "_INBOX." + role }

// HostInbox returns the reply-subject prefix of the agent of host id host,
// "_INBOX.host.<token>".
func HostInbox(host string) string { return "_INBOX.host." + vigil.Token(host) }

// ToastInbox returns the reply-subject prefix of the toast client of
// desktop name, "_INBOX.toast.<token>".
func ToastInbox(name string) string { return "_INBOX.toast." + vigil.Token(name) }

// streams lists every stream of the bus contract, KV buckets by their
// backing stream "KV_<bucket>".
var streams = []string{
	kv(vigil.BucketPulses), kv(vigil.BucketServices), kv(vigil.BucketLeases), kv(vigil.BucketRuntime),
	kv(vigil.BucketDelivered), kv(vigil.BucketSilences), kv(vigil.BucketHosts),
	vigil.StreamAlerts, vigil.StreamEvents, vigil.StreamDeliveries, vigil.StreamDeadLetters,
	vigil.StreamAttempts, vigil.StreamToasts, vigil.StreamHostStats,
}

func kv(bucket string) string { return "KV_" + bucket }

// Owned returns the streams (KV buckets as "KV_<bucket>") that role
// creates and updates when it provisions with least privilege: those it
// writes. The api role owns none; an unknown role owns none.
func Owned(role string) []string {
	switch role {
	case "ingest":
		return []string{kv(vigil.BucketPulses), vigil.StreamEvents, vigil.StreamHostStats, kv(vigil.BucketHosts)}
	case "watchdog":
		return []string{kv(vigil.BucketServices), kv(vigil.BucketLeases), kv(vigil.BucketRuntime), vigil.StreamAlerts}
	case "notifier":
		return []string{
			vigil.StreamDeliveries, vigil.StreamDeadLetters, vigil.StreamAttempts, vigil.StreamToasts,
			kv(vigil.BucketDelivered), kv(vigil.BucketSilences),
		}
	}
	return nil
}

// read returns the JetStream API subjects that read stream s: its info,
// single messages (direct or not), and consumers created, fetched and
// deleted by the reader (ordered consumers, KV watchers with flow control).
func read(s string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + s,
		"$JS.API.STREAM.MSG.GET." + s,
		"$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		"$JS.API.CONSUMER.CREATE." + s, "$JS.API.CONSUMER.CREATE." + s + ".>",
		"$JS.API.CONSUMER.INFO." + s + ".>",
		"$JS.API.CONSUMER.DELETE." + s + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
		"$JS.FC." + s + ".>",
	}
}

// consume adds durable consumers with explicit acks on stream s.
func consume(s string) []string {
	return append(read(s),
		"$JS.API.CONSUMER.DURABLE.CREATE."+s+".>",
		"$JS.ACK."+s+".>",
	)
}

// RolePermissions returns the least-privilege permissions of a server role
// (ingest, watchdog, notifier, api), following what each role publishes,
// reads and provisions (docs/tls-and-identities.md has the table). Every
// role may read JetStream's account info and the info of every vigil
// stream (to bind to them), create and update only the streams it owns
// (Owned), and subscribe to its own inbox (RoleInbox). It fails for an
// unknown role.
func RolePermissions(role string) (Permissions, error) {
	p := Permissions{
		Publish:   []string{"$JS.API.INFO"},
		Subscribe: []string{RoleInbox(role) + ".>"},
	}
	for _, s := range streams {
		p.Publish = append(p.Publish, "$JS.API.STREAM.INFO."+s)
	}
	for _, s := range Owned(role) {
		p.Publish = append(p.Publish, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s)
	}
	reads := func(ss ...string) {
		for _, s := range ss {
			p.Publish = append(p.Publish, read(s)...)
		}
	}
	switch role {
	case "ingest":
		p.Publish = append(p.Publish,
			"$KV."+vigil.BucketPulses+".>",
			vigil.EventSubjects,
			vigil.AlertSubjects, // manual alerts (POST /v1/alerts, vigil.in.alert)
			vigil.HostStatsSubjects,
			// The legacy probes of vigil all claim their slots in the lease bucket.
			"$KV."+vigil.BucketLeases+".legacy-probe.>",
		)
		p.Subscribe = append(p.Subscribe, "vigil.in.>")
		p.AllowResponses = true
		reads(kv(vigil.BucketPulses), kv(vigil.BucketLeases), kv(vigil.BucketHosts), vigil.StreamHostStats)
	case "watchdog":
		p.Publish = append(p.Publish,
			"$KV."+vigil.BucketServices+".>",
			"$KV."+vigil.BucketLeases+".>",
			"$KV."+vigil.BucketRuntime+".>",
			vigil.AlertSubjects,
		)
		reads(kv(vigil.BucketPulses), kv(vigil.BucketServices), kv(vigil.BucketLeases), kv(vigil.BucketRuntime), vigil.StreamAlerts)
	case "notifier":
		p.Publish = append(p.Publish,
			vigil.DeliverySubjects, vigil.DeadLetterSubjects, vigil.AttemptSubjects, vigil.ToastSubjects,
			"$KV."+vigil.BucketDelivered+".>",
			"$KV."+vigil.BucketSilences+".>",
			"$JS.API.STREAM.MSG.DELETE."+vigil.StreamDeadLetters, // a retried dead letter
		)
		p.Publish = append(p.Publish, consume(vigil.StreamAlerts)...)
		p.Publish = append(p.Publish, consume(vigil.StreamDeliveries)...)
		reads(kv(vigil.BucketServices), kv(vigil.BucketDelivered), kv(vigil.BucketSilences),
			vigil.StreamDeadLetters, vigil.StreamAttempts)
	case "api":
		// Read only: every stream but the delivery work queue, whose
		// consumers belong to the notifier.
		for _, s := range streams {
			if s != vigil.StreamDeliveries {
				reads(s)
			}
		}
	default:
		return Permissions{}, fmt.Errorf("nats identity: unknown role %q (want %s)", role, strings.Join(Roles, ", "))
	}
	p.Publish = compact(p.Publish)
	p.Subscribe = compact(p.Subscribe)
	return p, nil
}

// AgentScope says what an agent identity may do beyond publishing its
// host's stats and pulses.
type AgentScope struct {
	// Alerts lets the agent raise its threshold alerts through ingest
	// (vigil.in.alert). Ingest validates them but cannot tie them to the
	// host: such an agent can raise a manual alert about any service.
	Alerts bool
	// Toast is the desktop name whose toasts the identity may read
	// (vigil-agent toast --toast-name); empty: none.
	Toast string
}

// AgentPermissions returns the permissions of the agent of host id host:
//
//   - publish its stats on vigil.host.stats.<token> only (JetStream stores
//     them in VIGIL_HOST_STATS and vigil_hosts follows);
//   - send pulses to ingest's intake vigil.in.pulse (ingest validates each
//     pulse; NATS cannot restrict the service name inside the body, so this
//     is the same power as an HTTP write token);
//   - with scope.Alerts, send manual alerts to vigil.in.alert;
//   - read its own key of vigil_hosts (vigil-agent check);
//   - with scope.Toast, follow that desktop's toasts (an ordered consumer
//     on VIGIL_TOASTS whose filter, checked by the server, is
//     vigil.toast.<token>);
//   - receive replies on its own inboxes only (HostInbox, ToastInbox).
//
// It cannot publish another host's stats, write any stream or bucket
// directly, publish alerts, or read anyone's data. It fails for an
// invalid host id or toast name.
func AgentPermissions(host string, scope AgentScope) (Permissions, error) {
	if err := vigil.ValidateName(host); err != nil {
		return Permissions{}, fmt.Errorf("host id: %w", err)
	}
	hosts := kv(vigil.BucketHosts)
	p := Permissions{
		Publish: []string{
			vigil.HostStatsSubject(host),
			vigil.SubjectInPulse,
			"$JS.API.DIRECT.GET." + hosts + ".$KV." + vigil.BucketHosts + "." + vigil.Token(host),
		},
		Subscribe: []string{HostInbox(host) + ".>"},
	}
	if scope.Alerts {
		p.Publish = append(p.Publish, vigil.SubjectInAlert)
	}
	if scope.Toast != "" {
		if err := vigil.ValidateName(scope.Toast); err != nil {
			return Permissions{}, fmt.Errorf("toast name: %w", err)
		}
		t := vigil.StreamToasts
		p.Publish = append(p.Publish,
			"$JS.API.STREAM.INFO."+t,
			// Ordered consumers are named by the client; the server checks
			// that the filter in the subject is the consumer's filter.
			"$JS.API.CONSUMER.CREATE."+t+".*."+vigil.ToastSubject(scope.Toast),
			"$JS.API.CONSUMER.MSG.NEXT."+t+".*",
			"$JS.API.CONSUMER.INFO."+t+".*",
			"$JS.API.CONSUMER.DELETE."+t+".*",
		)
		p.Subscribe = append(p.Subscribe, ToastInbox(scope.Toast)+".>")
	}
	return p, nil
}

func compact(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// Conf renders p as the permissions block of a nats-server configuration
// file (users[].permissions), indented by indent.
func (p Permissions) Conf(indent string) string {
	var b strings.Builder
	b.WriteString("{\n")
	list := func(name string, subjects []string) {
		if len(subjects) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s  %s: { allow: [\n", indent, name)
		for _, s := range subjects {
			fmt.Fprintf(&b, "%s    %q\n", indent, s)
		}
		fmt.Fprintf(&b, "%s  ] }\n", indent)
	}
	list("publish", p.Publish)
	list("subscribe", p.Subscribe)
	if p.AllowResponses {
		fmt.Fprintf(&b, "%s  allow_responses: true\n", indent)
	}
	b.WriteString(indent + "}")
	return b.String()
}

// User is one entry of a nats-server authorization.users list: a name and
// password, or an nkey public key ("U…"), with its permissions. Password is
// a secret: it is written to the configuration, never logged.
type User struct {
	Name, Password, NKey string
	Comment              string
	Permissions          Permissions
}

// Conf renders u as an entry of authorization.users, indented by indent.
func (u User) Conf(indent string) string {
	var b strings.Builder
	if u.Comment != "" {
		for l := range strings.SplitSeq(u.Comment, "\n") {
			fmt.Fprintf(&b, "%s# %s\n", indent, l)
		}
	}
	b.WriteString(indent + "{\n")
	if u.NKey != "" {
		fmt.Fprintf(&b, "%s  nkey: %q\n", indent, u.NKey)
	} else {
		pw := strconv.Quote(u.Password)
		if strings.HasPrefix(u.Password, "$") {
			pw = u.Password // a variable of the server's environment
		}
		fmt.Fprintf(&b, "%s  user: %q\n%s  password: %s\n", indent, u.Name, indent, pw)
	}
	fmt.Fprintf(&b, "%s  permissions: %s\n%s}\n", indent, u.Permissions.Conf(indent+"  "), indent)
	return b.String()
}

// UsersConf renders users as a nats-server authorization block.
func UsersConf(users []User) string {
	var b strings.Builder
	b.WriteString("authorization {\n  users: [\n")
	for _, u := range users {
		b.WriteString(u.Conf("    "))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
