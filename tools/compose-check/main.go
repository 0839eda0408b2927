// compose-check: loads a Compose file the way `docker compose` does, with Compose's own loader (compose-go), for
// the profiles given, and says whether it is valid. No container engine is needed: this is how CI checks
// docker-compose.yml on machines without one (scripts/compose-check.sh builds and runs it).
//
//	compose-check [-f FILE] [--env-file FILE]... [--profile NAME]... [--json]
//
// What the loader does, in order: YAML parsing, interpolation of ${...} from the env files (so a required
// ${VAR:?message} that is unset is an error, as in `docker compose up`), the Compose specification's JSON schema
// check, normalization, the model's own validation, the profiles (none given: COMPOSE_PROFILES from the env files,
// as Compose does), then the consistency check of the services left (images, depends_on, networks, volumes,
// configs). The interpolation environment is the env files only, never this process's environment, so that a
// variable exported in a shell cannot hide a missing one. env_file entries of the services are not read: they name
// the real .env, which the env files given here stand in for.
//
// Prints the services of each active profile (or, with --json, the loaded project as `docker compose config
// --format json` would), exit 0; or the error, exit 1. Selecting no service at all is an error too (`docker
// compose up` refuses it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	file := flag.String("f", "docker-compose.yml", "the Compose file")
	asJSON := flag.Bool("json", false, "print the loaded project as JSON instead of the summary")
	var envFiles, profiles list
	flag.Var(&envFiles, "env-file", "an env file for interpolation (repeatable; none: the .env next to the Compose file, if any)")
	flag.Var(&profiles, "profile", "a profile to enable (repeatable; none: COMPOSE_PROFILES from the env files)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %s", strings.Join(flag.Args(), " ")))
	}

	project, err := load(*file, envFiles, profiles)
	if err != nil {
		fail(err)
	}
	if *asJSON {
		out, err := project.MarshalJSON()
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
		return
	}
	summary(*file, project)
}

func load(file string, envFiles, profiles []string) (*types.Project, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(profiles...),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithoutEnvironmentResolution,
	)
	if err != nil {
		return nil, err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	if len(project.Services) == 0 {
		return nil, fmt.Errorf("no service selected: no service of %s is in the profiles %q", file, activeProfiles(opts.Environment, profiles))
	}
	return project, nil
}

// The profiles the load used: those given, else COMPOSE_PROFILES (what cli.WithDefaultProfiles does).
func activeProfiles(env map[string]string, given []string) []string {
	if len(given) > 0 {
		return given
	}
	var out []string
	for _, p := range strings.Split(env["COMPOSE_PROFILES"], ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// One line per profile of the enabled services ("(none)" for services without a profile, which are always on).
func summary(file string, project *types.Project) {
	byProfile := map[string][]string{}
	for name, s := range project.Services {
		if len(s.Profiles) == 0 {
			byProfile["(none)"] = append(byProfile["(none)"], name)
		}
		for _, p := range s.Profiles {
			byProfile[p] = append(byProfile[p], name)
		}
	}
	names := make([]string, 0, len(byProfile))
	for p := range byProfile {
		names = append(names, p)
	}
	sort.Strings(names)
	fmt.Printf("%s: valid, project %s, %d services, %d disabled by profile\n", file, project.Name, len(project.Services), len(project.DisabledServices))
	for _, p := range names {
		sort.Strings(byProfile[p])
		fmt.Printf("  profile %s (%d): %s\n", p, len(byProfile[p]), strings.Join(byProfile[p], " "))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
	os.Exit(1)
}
