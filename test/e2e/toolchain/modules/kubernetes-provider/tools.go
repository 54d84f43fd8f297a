// Copyright 2026 The nodelocaldns authors.
// SPDX-License-Identifier: Apache-2.0

//go:build tools

// Package tools records the one dependency of the provider's schema generate step
// (cmd/pulumi-resource-kubernetes/generate.go, which is `//go:build ignore` upstream and so is
// invisible to `go mod tidy`): build.sh runs that file with `go run` inside this module.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
