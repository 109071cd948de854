package bus

import (
	"fmt"
	"slices"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/vigil-monitor/vigil/internal/natsconn"
)

// ServerPermissions converts p to nats-server's permissions.
func ServerPermissions(p natsconn.Permissions) *server.Permissions {
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe)},
	}
	if p.AllowResponses {
		sp.Response = &server.ResponsePermission{
			MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
			Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION,
		}
	}
	return sp
}

// addRoleUsers adds one nkey user per role to opts, with the role's
// permissions and in-process connections only, and returns their keys.
func addRoleUsers(opts *server.Options) (map[string]nkeys.KeyPair, error) {
	if opts.Authorization != "" || opts.Username != "" {
		return nil, fmt.Errorf("nats identities: the nats config's single user or token cannot be combined with role users; use authorization.users")
	}
	roles := map[string]nkeys.KeyPair{}
	for _, role := range natsconn.Roles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("nats identity %s: %w", role, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nats identity %s: %w", role, err)
		}
		perms, err := natsconn.RolePermissions(role)
		if err != nil {
			return nil, err
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{
			Nkey:                   pub,
			Permissions:            ServerPermissions(perms),
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
		})
		roles[role] = kp
	}
	return roles, nil
}

// ConnectRole opens the in-process connection of role (ingest, watchdog,
// notifier, api), named "vigil-<role>". With ServerConfig.Identities it
// authenticates as the role's nkey user and takes replies on
// natsconn.RoleInbox(role); otherwise it is Connect.
func (e *Embedded) ConnectRole(role string) (*nats.Conn, error) {
	kp, ok := e.roles[role]
	if !ok {
		if e.roles != nil {
			return nil, fmt.Errorf("nats identity: unknown role %q", role)
		}
		return e.Connect("vigil-" + role)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("nats identity %s: %w", role, err)
	}
	return nats.Connect("", nats.InProcessServer(e.srv), nats.Name("vigil-"+role), nats.MaxReconnects(-1),
		nats.Nkey(pub, kp.Sign), nats.CustomInboxPrefix(natsconn.RoleInbox(role)))
}
