#!/usr/bin/env node
// The compiled CLI (npm ci runs `prepare`, which builds dist/).
await import("../dist/cli/main.js");
