//go:build !linux

package crashtest

import "github.com/sessionvault/sessionvault/internal/reexec"

// powerRoles is empty where the power-loss file system does not run.
var powerRoles map[string]reexec.Func
