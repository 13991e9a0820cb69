// Command patchtree runs a patchtree site server and talks to one as a client.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one subcommand. Subcommands with their own subcommands (token) dispatch again.
type command struct {
	name    string
	args    string // argument synopsis for usage
	summary string
	run     func(args []string) error
}

// usageError is a mistake in how the command was invoked: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errHelp means --help was printed: exit status 0.
var errHelp = errors.New("help printed")

func commands() []command {
	return []command{
		{"serve", "--role parent|relay|child --name NAME --data-dir DIR [flags]", "run one server of a site", runServe},
		{"demo", "[--exit]", "start a parent and two children on loopback: replicate, scan, report compliance", runDemo},
		{"status", "", "show the site's status", runStatus},
		{"languages", "[set RANGE...]", "show or set the site's managed language ranges", runLanguages},
		{"token", "create --role ROLE | list | revoke ID", "create, list and revoke API tokens", runToken},
		{"catalog", "import [SOURCE] | show [BULLETIN] | generate | severity ... | disable|enable BULLETIN", "import, browse and administer the update catalog", runCatalog},
		{"child", "add NAME | list | remove NAME", "enrol, list and remove child sites", runChild},
		{"alerts", "", "show language alerts", runAlerts},
		{"tree", "", "show every site below this one: ranges, link, lag, runs, alerts", runTree},
		{"runs", "[--child NAME]", "show the replication run history", runRuns},
		{"replicate-now", "[--child NAME] [--scope S] [--policy ID | --folder F] [--complete] [--wait]", "replicate to children now", runReplicateNow},
		{"policy", "create --bulletin ID ... | list | show ID | enable ID | disable ID | delete ID", "create and administer software update policies", runPolicy},
		{"settings", "list | show NAME | set NAME FILE|-", "read and replace settings documents", runSettings},
		{"audit", "[--action PREFIX] [--since KEY] [--limit N]", "show the audit log", runAudit},
		{"snapshot", "save FILE | restore FILE [--force] | inspect FILE", "back up and restore the whole state of a site", runSnapshot},
		{"scan", "submit FILE|- [--ndjson]", "post system assessment scans to a site", runScan},
		{"version", "[--json]", "show this binary's version, commit and Go version", runVersion},
		{"compliance", "[--by site|bulletin] [--site NAME] [--severity S] [--vendor V] [--output table|json|csv]", "show compliance rolled up across the sites", runCompliance},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args and maps errors to exit codes: 0 ok, 1 failure, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "patchtree: %v (see 'patchtree --help')\n", oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "patchtree: %v\n", oneLine(err))
		return 1
	}
}

func dispatch(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printTopUsage(stdout)
		if len(args) == 0 {
			return usageError{errors.New("missing command")}
		}
		return errHelp
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

func printTopUsage(w io.Writer) {
	fmt.Fprintln(w, "patchtree: hierarchical replication of software-update metadata")
	fmt.Fprintln(w, "\nUsage: patchtree COMMAND [flags]\n\nCommands:")
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'patchtree COMMAND --help' for a command's flags.")
}

// subcommand is one command of a group such as "token" or "catalog".
type subcommand struct {
	name string
	run  func(args []string) error
}

// dispatchSub runs the subcommand named by args[0]; --help prints usage.
func dispatchSub(group, usage string, args []string, subs []subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 {
		return usageError{fmt.Errorf("%s: missing subcommand (%s)", group, strings.Join(names, ", "))}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println(usage)
		return errHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:])
		}
	}
	return usageError{fmt.Errorf("%s: unknown subcommand %q (want %s)", group, args[0], strings.Join(names, ", "))}
}

// newFlags returns a flag set whose --help prints the command's usage to stdout.
func newFlags(name, synopsis, summary string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(os.Stdout, "Usage: patchtree %s %s\n\n%s\n", name, synopsis, summary)
		if fs.HasFlags() {
			fmt.Fprintf(os.Stdout, "\nFlags:\n%s", fs.FlagUsages())
		}
	}
	return fs
}

// parseFlags parses args; --help prints usage and returns errHelp, a bad flag a usageError.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp // pflag has printed the usage
		}
		return usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
	}
	return nil
}

// oneLine keeps an error message on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
