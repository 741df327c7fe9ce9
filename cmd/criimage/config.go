package main

import (
	"context"
	"errors"
	"io"
)

// runConfig implements "criimage config".
func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
