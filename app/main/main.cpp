#include "app/commands.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App cli{"Ferry: a Nostr sync node"};
  cli.set_version_flag("--version", std::string{"ferry "} + FERRY_VERSION);
  cli.require_subcommand(1);
  std::string config_file;
  auto add_config = [&](CLI::App* cmd) {
    cmd->add_option("-c,--config", config_file,
                    "ferry.toml to read (default: the embedded defaults)");
  };

  auto node = cli.add_subcommand("node", "Run the node (relay, store, sync)");
  add_config(node);

  std::string input = "-";
  auto import = cli.add_subcommand("import", "Import JSONL events into the store");
  add_config(import);
  import->add_option("file", input, "JSONL file, or - for standard input");

  std::string filter = "{}";
  auto export_cmd = cli.add_subcommand("export", "Print stored events as JSONL");
  add_config(export_cmd);
  export_cmd->add_option("--filter", filter, "a NIP-01 filter as JSON");

  ferry::app::sync_options sync_opts;
  auto sync = cli.add_subcommand(
    "sync", "Reconcile the store with a relay over NIP-77 (negentropy), once");
  add_config(sync);
  sync->add_option("url", sync_opts.url, "the relay, ws:// or wss://")->required();
  sync->add_option("--filter", sync_opts.filter_json,
                   "a NIP-01 filter as JSON: the events to reconcile")
    ->capture_default_str();
  sync->add_option("--dir", sync_opts.direction,
                   "down: fetch what we lack, up: send what the relay lacks, both")
    ->check(CLI::IsMember({"down", "up", "both"}))
    ->capture_default_str();
  sync->add_flag("--dry-run", sync_opts.dry_run,
                 "only reconcile and print the counts (fetch and send nothing)");
  sync->add_option("--frame-size-limit", sync_opts.frame_size_limit,
                   "largest negentropy message we send, bytes before hex (0: none)")
    ->capture_default_str();
  sync->add_option("--timeout", sync_opts.timeout_seconds,
                   "longest wait for any answer of the relay, in seconds")
    ->capture_default_str();
  sync->add_option("--ca-file", sync_opts.ca_file,
                   "extra trusted CA certificates (PEM) for wss://");
  sync->add_option("--fetch-backlog", sync_opts.fetch_backlog,
                   "needed ids the reconciliation finds before its next round "
                   "waits for them to be asked for")
    ->capture_default_str();
  sync->add_flag("--reconcile-when-empty", sync_opts.reconcile_when_empty,
                 "reconcile even when the store holds nothing the filter matches "
                 "(by default such a sync pages the relay with REQ)");

  std::string key_out;
  bool force = false;
  auto keygen = cli.add_subcommand("keygen", "Create the node's secret key");
  add_config(keygen);
  keygen->add_option("--out", key_out,
                     "where to write it (default: node.key_file of the config)");
  keygen->add_flag("--force", force, "replace an existing key file");

  auto id = cli.add_subcommand("id", "Print the node's identity (pubkey, npub)");
  add_config(id);

  ferry::app::console_options console_opts;
  auto console = cli.add_subcommand("console", "Inspect and steer a running node's actors");
  console->add_option("-c,--config", config_file,
                      "the node's ferry.toml: its console address and secret");
  auto console_node
    = console->add_option("--node", console_opts.node,
                          "the node's inspection port, HOST:PORT (default: "
                          "from --config, else 127.0.0.1:7449)");
  auto console_secret
    = console->add_option("--secret", console_opts.secret,
                          "the node's console.secret (default: "
                          "$FERRY_CONSOLE_SECRET, else from --config)");
  console->add_flag("--json", console_opts.json,
                    "print JSON, with times as ISO 8601");
  console->add_option("command", console_opts.command,
                      "a command and its argument (below); none: a prompt");
  console->footer("\n" + ferry::app::console_help());

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end well; every other parse error is a usage
    // error, whatever CLI11's own code for it.
    return cli.exit(e) == 0 ? 0 : 2;
  }

  if (*console) {
    if (console_secret->count() == 0)
      if (auto from_env = std::getenv("FERRY_CONSOLE_SECRET"))
        console_opts.secret = from_env;
    if (config_file.empty()) {
      console_opts.node_origin
        = console_node->count() > 0
            ? "is the node running, with its console on that --node address?"
            : "that address is the default: is the node running? --config "
              "FILE reads the node's console address from its ferry.toml, "
              "--node HOST:PORT names it";
    } else {
      auto cfg = ferry::app::load_config(config_file);
      if (!cfg)
        return 2;
      if (console_node->count() == 0)
        console_opts.node = ferry::app::console_address(cfg->console);
      if (console_secret->count() == 0 && console_opts.secret.empty())
        console_opts.secret = cfg->console.secret;
      console_opts.node_origin
        = console_node->count() > 0
            ? "is the node running, with its console on that --node address?"
            : "that address is console.address and console.port of "
                + config_file + ": is the node running on that config?";
    }
    return ferry::app::run_console(console_opts);
  }

  auto cfg = ferry::app::load_config(config_file);
  if (!cfg)
    return 2;
  if (*node)
    return ferry::app::run_node(*cfg);
  if (*import)
    return ferry::app::run_import(*cfg, input);
  if (*export_cmd)
    return ferry::app::run_export(*cfg, filter);
  if (*sync)
    return ferry::app::run_sync(*cfg, sync_opts);
  if (*id)
    return ferry::app::run_id(*cfg);
  return ferry::app::run_keygen(*cfg, key_out, force);
}
