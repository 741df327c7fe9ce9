// Package action is the criimage GitHub Action's own directory: run.sh is the action's logic
// (action.yml at the repository root only maps its inputs to run.sh's environment), and the
// package's test keeps action.yml, run.sh, docs/action.md and examples/ consistent and runs the
// script here, offline: against the embedded reference, against an endpoint that does not exist,
// with downloads from a release mirror on 127.0.0.1 (a good checksum, a tampered binary), and
// with a stub criimage for the command lines it builds. The package has no code of its own.
package action
