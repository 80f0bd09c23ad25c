package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/xorest/xorest/transfer/urlsource"
)

// multiFlag is a flag that may be repeated (--xapi URL --xapi URL). From
// the environment it takes a comma-separated list.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}

// importAllowUsage documents --import-allow (XOREST_IMPORT_ALLOW).
const importAllowUsage = "host, address or CIDR prefix that imports from a URL may reach besides public addresses, e.g. 10.0.0.0/8 or minio.internal (repeatable, or comma-separated)"

// importAllow returns the entries of --import-allow, each value of which
// may be a comma-separated list, checked as urlsource.NewPolicy checks
// them so that a bad entry stops the start rather than every import.
func importAllow(m multiFlag) ([]string, error) {
	var entries []string
	for _, v := range m {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if _, err := urlsource.NewPolicy(entries); err != nil {
		return nil, fmt.Errorf("%w: --import-allow (XOREST_IMPORT_ALLOW): %v", errUsage, err)
	}
	return entries, nil
}

// hostURLsUsage documents --xapi-host-url.
const hostURLsUsage = "base URL of a pool member, as UUID=URL (repeatable or comma-separated), when it is not reachable on the pool URL's port at its address (port forwarding); its stats, logs and audit log are fetched there"

// hostURLs returns the entries of --xapi-host-url as a map from host uuid
// to base URL (xapi.Options.HostURLs, which checks the URLs).
func hostURLs(m multiFlag) (map[string]string, error) {
	var out map[string]string
	for _, v := range m {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			uuid, u, ok := strings.Cut(e, "=")
			if !ok || strings.TrimSpace(uuid) == "" || strings.TrimSpace(u) == "" {
				return nil, fmt.Errorf("%w: --xapi-host-url (XOREST_XAPI_HOST_URL): %q is not UUID=URL", errUsage, e)
			}
			if out == nil {
				out = map[string]string{}
			}
			out[strings.TrimSpace(uuid)] = strings.TrimSpace(u)
		}
	}
	return out, nil
}

// parseFlags parses args into fs after applying XOREST_<FLAG> environment
// variables, so that the command line wins over the environment.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.SetOutput(io.Discard)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v := getenv(name)
		if v == "" || envErr != nil {
			return
		}
		if m, ok := f.Value.(*multiFlag); ok {
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					m.Set(part)
				}
			}
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, err)
		}
	})
	if envErr != nil {
		return envErr
	}
	// Values from the environment are replaced, not extended, by the
	// command line for repeatable flags.
	seen := map[string]bool{}
	for _, a := range args {
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if f := fs.Lookup(name); f != nil {
			if m, ok := f.Value.(*multiFlag); ok && !seen[name] {
				*m = nil
				seen[name] = true
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%w: %s", errUsage, flagUsage(fs))
		}
		return fmt.Errorf("%w: %v\n%s", errUsage, err, flagUsage(fs))
	}
	return nil
}

func envName(flagName string) string {
	return "XOREST_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func flagUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage of %s:\n", fs.Name())
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}

// defaultTokenStore is the token file under the user's state directory:
// $XDG_STATE_HOME/xorest/tokens.json, else ~/.local/state/xorest/tokens.json.
func defaultTokenStore(getenv func(string) string) string {
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return "file:" + filepath.Join(dir, "xorest", "tokens.json")
}
