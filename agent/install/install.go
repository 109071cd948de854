// Package install sets vigil-agent up as a service of the operating
// system with github.com/kardianos/service (v1.3.0): a systemd unit (or
// upstart, OpenRC, SysV) on Linux, a launchd job on macOS, a Windows
// service. It is the only package of vigil that imports kardianos/service.
package install

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/kardianos/service"
)

// Options describe the service to install.
type Options struct {
	// Name is the service name (the unit is Name.service, the launchd label
	// Name, the Windows service Name).
	Name string
	// Description is the one line the service manager shows.
	Description string
	// Executable is the absolute path of the vigil-agent binary; Args its
	// arguments ("run", "--config", "/etc/vigil-agent/agent.yaml").
	Executable string
	Args       []string
	// User installs a per-user service (systemd --user,
	// ~/Library/LaunchAgents) instead of a system one; the toast client
	// runs that way, in the user's desktop session.
	User bool
	// System forces a service system by name ("linux-systemd",
	// "darwin-launchd", "windows-service"); empty picks the one this
	// machine runs.
	System string
}

// Config returns the kardianos service configuration of o: restarted
// always, started after the network on systemd, kept alive and run at load
// on launchd, started automatically and restarted on failure on Windows.
func Config(o Options) *service.Config {
	return &service.Config{
		Name:         o.Name,
		DisplayName:  o.Name,
		Description:  o.Description,
		Executable:   o.Executable,
		Arguments:    o.Args,
		Dependencies: []string{"After=network-online.target", "Wants=network-online.target"},
		Option: service.KeyValue{
			"UserService": o.User,
			"Restart":     "always",
			"KeepAlive":   true,
			"RunAtLoad":   true,
			"StartType":   "automatic",
			"OnFailure":   "restart",
		},
	}
}

// program is a service.Interface that runs fn until the service manager
// stops it.
type program struct {
	fn     func(context.Context) error
	cancel context.CancelFunc
	done   chan error
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.fn(ctx) }()
	return nil
}

func (p *program) Stop(service.Service) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	return <-p.done
}

func newService(o Options, fn func(context.Context) error) (service.Service, error) {
	p := &program{fn: fn}
	if o.System == "" {
		s, err := service.New(p, Config(o))
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", o.Name, err)
		}
		return s, nil
	}
	for _, sys := range service.AvailableSystems() {
		if sys.String() == o.System {
			s, err := sys.New(p, Config(o))
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", o.Name, err)
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("service system %q is not available on %s", o.System, runtime.GOOS)
}

// Install installs and enables the service (it does not start it). It
// fails when the service exists or the service manager refuses (a system
// service needs root or Administrator).
func Install(o Options) error {
	s, err := newService(o, nil)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install %s (%s): %w", o.Name, s.Platform(), err)
	}
	return nil
}

// Uninstall stops nothing and removes the service's definition.
func Uninstall(o Options) error {
	s, err := newService(o, nil)
	if err != nil {
		return err
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("uninstall %s (%s): %w", o.Name, s.Platform(), err)
	}
	return nil
}

// Platform names the service system Install would use here.
func Platform(o Options) string {
	s, err := newService(o, nil)
	if err != nil {
		return "none"
	}
	return s.Platform()
}

// Run runs fn as the service: under the Windows service manager it
// reports to it and stops fn when told; everywhere else (systemd and
// launchd send signals, which the caller's ctx already carries) it calls
// fn(ctx) directly.
func Run(ctx context.Context, o Options, fn func(context.Context) error) error {
	if runtime.GOOS != "windows" || service.Interactive() {
		return fn(ctx)
	}
	s, err := newService(o, fn)
	if err != nil {
		return err
	}
	if err := s.Run(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("service %s: %w", o.Name, err)
	}
	return nil
}
