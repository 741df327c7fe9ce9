package main

import (
	"context"
	"errors"
	"io"
)

// runRegistry implements "criimage registry".
func runRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
