package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sessionvault/sessionvault/backends"
	"github.com/sessionvault/sessionvault/backends/file"
)

var cmdMigrateLayout = &command{
	name:    "migrate-layout",
	summary: "move a vault folder's files to the current file layout (2)",
	help: `Moves every file of the vault folder still in file layout 1 (each blob a
bare file, its previous generation a ".prev" file beside it) to layout 2
(one record file per name, holding the blob and its previous generation in
two slots, updated in place: docs/FORMAT.md, section 15). Both generations
of every name are kept. Each name moves with one atomic rename; a crash or
a kill leaves every name readable, in one layout or the other, and running
the command again finishes the job.

It is optional: a layout-1 folder opens as it is, and each name moves on
its first write. The command needs no passphrase (it reads no plaintext)
and works on the file backend only.`,
	setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
		return func(ctx context.Context, a *app, _ []string) error {
			return a.migrateLayout(ctx)
		}
	},
}

func (a *app) migrateLayout(ctx context.Context) error {
	if a.backend != "file" {
		return usagef("migrate-layout: --backend %s has no file layout", a.backend)
	}
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return err
	}
	fb, ok := b.(*file.Backend)
	if !ok {
		return usagef("migrate-layout: not a file backend")
	}
	if _, _, err := fb.Get(ctx, backends.HeaderName); err != nil {
		return a.explain(err)
	}
	rep, err := fb.Migrate(ctx)
	if err != nil {
		return a.explain(err)
	}
	names := make([]string, 0, len(rep.Migrated))
	for _, n := range rep.Migrated {
		if n == backends.HeaderName {
			n = "header"
		}
		names = append(names, n)
	}
	return a.emit(map[string]any{"migrated": names, "already_layout_2": rep.Current}, func(w io.Writer) {
		if len(names) == 0 {
			fmt.Fprintf(w, "nothing to migrate: %d files already in layout 2\n", rep.Current)
			return
		}
		fmt.Fprintf(w, "moved to layout 2: %s (%d already in layout 2)\n", strings.Join(names, ", "), rep.Current)
	})
}
