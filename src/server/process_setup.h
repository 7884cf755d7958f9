// Process-wide settings the server makes once at start-up, before it reads
// any key material.
#pragma once

namespace kes::server {

// Makes the process non-dumpable (prctl PR_SET_DUMPABLE 0) and sets its
// core-file limit to 0: no core dump, and no process of the same user may
// ptrace it or read its memory (/proc/<pid>/mem, environ). Failures are
// ignored: neither call fails on Linux for an unprivileged process.
void HardenProcess();

// Raises the soft open-file limit to the hard limit, as Go's runtime does
// at start-up: systemd's default soft limit of 1024 would otherwise cap the
// server's connections (ConnectionSlots) far below what the host allows.
void RaiseOpenFileLimit();

}  // namespace kes::server
