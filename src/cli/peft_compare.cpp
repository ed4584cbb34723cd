// peft-compare --config base.yaml --methods lora.yaml,ia3.yaml,... [--out DIR] [--icl-shots 0,4,16,32 | --no-icl]
//              [--metric M] [--full-learning-rate LR] [section.key=value ...]
// Trains and evaluates each method on the same base model, data, steps and seed, each in a process of its own (so
// that peak memory is its own and a failing method cannot take the others down), adds full fine-tuning as the
// reference row and in-context-learning rows, then writes DIR/comparison.{md,csv,json,svg} and prints the table.
// Exit code 0 when every row was measured, 1 when a method failed (its row says why; the others are complete).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/main_guard.h"
#include "compare/measure.h"
#include "compare/report.h"
#include "config/comparison.h"
#include "config/run_config.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/atomic_file.h"

extern char** environ;

namespace {

// Runs this executable again with `arguments`, its output going to `log`; returns the exit status.
int run_worker(const std::vector<std::string>& arguments, const std::string& log) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> all = {self};
  all.insert(all.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : all) argv.push_back(argument.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  // /proc/self/exe runs this very binary even when a rebuild has replaced the file since it started.
  int error = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  peft::check(error == 0, "cannot start " + self + ": " + std::strerror(error));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// The worker's one-line reason: the last "error: ..." line of its log, else its last line.
std::string failure_reason(const std::string& log, int status) {
  std::ifstream in(log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.rfind("error: ", 0) == 0) error = line.substr(7);
  }
  if (!error.empty()) return error;
  return (last.empty() ? "" : last + " ") + "(exit status " + std::to_string(status) + ", log " + log + ")";
}

nlohmann::json read_row(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

bool is_full_fine_tuning(const peft::ComparisonEntry& entry) {
  YAML::Node peft = YAML::Load(entry.peft_yaml);
  return peft.IsMap() && peft["method"] && peft["method"].as<std::string>() == "full";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train and measure several PEFT methods, full fine-tuning and in-context learning side by side."};
  std::string config_path, out = "runs/compare", metric = "auto", full_learning_rate;
  std::vector<std::string> method_files, overrides;
  std::vector<int64_t> icl_shots = {0, 4, 16, 32};
  app.add_option("--config,-c", config_path, "base run config: model, data, steps, batch and seed for every method")
      ->required();
  app.add_option("--methods", method_files,
                 "method configs (their peft section and optimiser keys), comma-separated, or one YAML list")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->required();
  app.add_option("--out,-o", out, "directory for the runs and comparison.{md,csv,json,svg}");
  bool no_icl = false;
  app.add_option("--icl-shots", icl_shots,
                 "in-context rows: demonstrations per prediction, as far as the context allows")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_flag("--no-icl", no_icl, "no in-context rows");
  app.add_option("--metric", metric,
                 "held-out metric: loss | perplexity (language modelling); accuracy | f1 | "
                 "macro_f1 | matthews (classification); auto = the first");
  app.add_option("--full-learning-rate", full_learning_rate,
                 "learning rate of the full fine-tuning row added when no method is full (default: the base's)");
  app.add_option("overrides", overrides, "section.key=value settings applied to every run");
  std::string worker_method, worker_name;
  int64_t worker_shots = -1;
  app.add_option("--worker-method", worker_method)->group("");  // internal: measure one method's row
  app.add_option("--worker-shots", worker_shots)->group("");    // internal: measure one in-context row
  app.add_option("--worker-name", worker_name)->group("");
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    auto base = peft::RunConfig::load(config_path, overrides);
    const auto& metrics = peft::comparison_metrics(base.data.task);
    if (metric == "auto") metric = metrics.front();
    peft::check(std::find(metrics.begin(), metrics.end(), metric) != metrics.end(),
                "--metric " + metric + " does not fit data.task " + base.data.task + " in " + config_path +
                    " (choose " + peft::join(metrics, ", ") + ")");
    peft::check(!base.data.eval.empty(), config_path + ": peft-compare needs held-out data: set data.eval");

    // A worker measures one row and writes it as JSON; the parent reads it back.
    if (!worker_method.empty() || worker_shots >= 0) {
      auto config = worker_method.empty() ? base : peft::RunConfig::load(worker_method, overrides);
      auto row = worker_method.empty() ? peft::measure_in_context(config, worker_shots, worker_name, metric)
                                       : peft::measure_method(config, worker_name, metric);
      peft::write_file_atomic(out + "/row.json", row.dump(2) + "\n");
      return 0;
    }

    // Overrides apply to every run alike: not to what each method or the comparison sets itself.
    const auto& per_method = peft::per_method_train_keys();
    for (const auto& text : overrides) {
      std::string key = text.substr(0, text.find('='));
      bool own = key.rfind("peft", 0) == 0 || key.rfind("output.", 0) == 0 ||
                 (key.rfind("train.", 0) == 0 &&
                  std::find(per_method.begin(), per_method.end(), key.substr(6)) != per_method.end());
      peft::check(!own, "override " + text + ": peft-compare sets " + key +
                            " per method (in the methods list) or itself (output under --out)");
    }
    auto entries = peft::load_comparison_entries(method_files);
    for (const auto& entry : entries) {
      peft::check(entry.name != "in-context", entry.source + ": the name in-context is the in-context rows' directory");
    }
    bool has_full = std::any_of(entries.begin(), entries.end(), is_full_fine_tuning);
    if (!has_full) {
      bool taken = std::any_of(entries.begin(), entries.end(), [](const auto& e) { return e.name == "full"; });
      peft::ComparisonEntry full{taken ? "full-reference" : "full", "the reference row", "method: full", {}, {}};
      if (!full_learning_rate.empty()) full.train.emplace_back("learning_rate", full_learning_rate);
      entries.push_back(full);
    }
    std::filesystem::create_directories(out);
    peft::ComparisonReport report;
    report.metric_name = "held-out " + metric;
    report.lower_is_better = peft::lower_is_better(metric);
    report.title = std::filesystem::path(base.model.path).filename().string() + " on " +
                   std::filesystem::path(base.data.train).filename().string() + ", " +
                   (base.train.max_steps > 0 ? std::to_string(base.train.max_steps) + " steps"
                                             : std::to_string(base.train.epochs) + " epoch(s)") +
                   ", batch " + std::to_string(base.train.batch_size) + ", seed " + std::to_string(base.train.seed);

    std::vector<int64_t> shots;
    if (no_icl) {
    } else if (base.data.task == "language_modeling") {
      shots = icl_shots;
    } else {
      std::fprintf(stderr,
                   "note: in-context rows are measured for language modelling; for classification use "
                   "peft-eval --icl-shots K --icl-from TRAIN_FILE\n");
    }
    size_t total = entries.size() + shots.size(), done = 0;
    int failures = 0;
    auto measure = [&](const std::string& name, const std::string& dir, std::vector<std::string> arguments) {
      std::filesystem::create_directories(dir);
      arguments.insert(arguments.end(), {"--metric", metric, "--worker-name", name, "--out", dir});
      arguments.insert(arguments.end(), overrides.begin(), overrides.end());
      std::fprintf(stderr, "[%zu/%zu] %s ...\n", ++done, total, name.c_str());
      auto start = std::chrono::steady_clock::now();
      std::filesystem::remove(dir + "/row.json");
      int status = run_worker(arguments, dir + "/log.txt");
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      nlohmann::json row;
      if (status == 0 && std::filesystem::exists(dir + "/row.json")) {
        row = read_row(dir + "/row.json");
        std::fprintf(stderr, "[%zu/%zu] %s: %s in %.1f s\n", done, total, name.c_str(),
                     row.value("status", "ok").c_str(), seconds);
      } else {
        row = {{"name", name}, {"status", "failed"}, {"error", failure_reason(dir + "/log.txt", status)}};
        std::fprintf(stderr, "[%zu/%zu] %s failed: %s\n", done, total, name.c_str(),
                     row["error"].get<std::string>().c_str());
        ++failures;
      }
      report.rows.push_back(row);
    };
    for (const auto& entry : entries) {
      std::string dir = out + "/" + entry.name;
      if (!entry.ignored.empty()) {
        std::fprintf(stderr, "note: %s: %s come from %s\n", entry.source.c_str(),
                     peft::join(entry.ignored, ", ").c_str(), config_path.c_str());
      }
      std::filesystem::create_directories(dir);
      std::string config = dir + "/config.yaml";
      peft::write_entry_config(config_path, entry, dir, config);
      measure(entry.name, dir, {"--config", config_path, "--methods", "-", "--worker-method", config});
    }
    for (int64_t k : shots) {
      std::string name = "ICL K=" + std::to_string(k);
      measure(name, out + "/in-context/" + std::to_string(k),
              {"--config", config_path, "--methods", "-", "--worker-shots", std::to_string(k)});
    }

    std::string markdown = peft::comparison_markdown(report);
    peft::write_file_atomic(out + "/comparison.md", "# " + report.title + "\n\n" + markdown);
    peft::write_file_atomic(out + "/comparison.csv", peft::comparison_csv(report));
    peft::write_file_atomic(out + "/comparison.json", peft::comparison_json(report).dump(2) + "\n");
    peft::write_file_atomic(out + "/comparison.svg", peft::comparison_plot(report));
    std::printf("%s\n%s\nwritten to %s/comparison.{md,csv,json,svg}\n", report.title.c_str(), markdown.c_str(),
                out.c_str());
    return failures == 0 ? 0 : 1;
  });
}
