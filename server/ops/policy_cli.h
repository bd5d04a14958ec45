// `warden policy check|test|explain`: the policy tools over engine/ (DESIGN.md 3.3).
// Not thread-safe (command-line use only).
#pragma once

#include <CLI/CLI.hpp>

namespace warden::server {

// Adds the `policy` subcommand tree to `app`. When one of its commands runs, it prints to
// stdout/stderr and stores the process exit code in *exit_code
// (0 ok, 3 compile errors, 4 failed test cases, 2 usage).
void AddPolicyCommands(CLI::App& app, int* exit_code);

}  // namespace warden::server
