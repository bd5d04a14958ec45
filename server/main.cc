// The warden executable: the only place that wires engine/, store/ and server/ together.
#include <CLI/CLI.hpp>

#include "server/policy_cli.h"

int main(int argc, char** argv) {
  CLI::App app{"warden: authorization for service accounts and API tokens"};
  app.require_subcommand(1);
  int exit_code = 0;
  warden::server::AddPolicyCommands(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
