// kes-loadgen: an HTTPS load generator for KES-like servers (mTLS or API
// key, keep-alive or a handshake per request, closed or open loop). Prints
// a summary, or one JSON object with --json. It never judges the figures.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "loadgen/connection.h"
#include "loadgen/h2_connection.h"
#include "loadgen/tls_client_context.h"

namespace kes::bench {
namespace {

namespace asio = boost::asio;

std::string BuildRequest(const LoadConfig& c) {
  std::string r = c.method + " " + c.path + " HTTP/1.1\r\nHost: " + c.host + ":" +
                  std::to_string(c.port) + "\r\nUser-Agent: kes-loadgen\r\n";
  if (!c.body.empty() || c.method == "POST" || c.method == "PUT") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(c.body.size()) +
         "\r\n";
  }
  for (const auto& h : c.headers) r += h + "\r\n";
  r += "\r\n";
  r += c.body;
  return r;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// Polls the server (a new connection every millisecond) until one request
// gets a 2xx answer; prints the wall-clock time of that answer in Unix ns so
// that a script can subtract the moment it started the server.
int FirstResponse(const LoadConfig& config, double timeout_s) {
  std::string error;
  SslCtxPtr ctx = MakeClientContext(config, &error);
  if (!ctx) {
    std::cerr << "kes-loadgen: " << error << "\n";
    return 2;
  }
  const std::string request = BuildRequest(config);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  asio::io_context io;
  int attempts = 0;
  while (Clock::now() < deadline) {
    attempts++;
    boost::system::error_code ec;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address(config.host), config.port}, ec);
    if (!ec) {
      SSL* ssl = SSL_new(ctx.get());
      SSL_set_fd(ssl, sock.native_handle());
      char buf[4096];
      size_t n = 0;
      if (SSL_connect(ssl) == 1 && SSL_write(ssl, request.data(), request.size()) > 0 &&
          SSL_read_ex(ssl, buf, sizeof buf, &n) == 1 && n > 12 &&
          std::string_view(buf, n).starts_with("HTTP/1.1 2")) {
        auto now = std::chrono::system_clock::now().time_since_epoch();
        SSL_free(ssl);
        std::cout
            << nlohmann::json{{"first_response_unix_ns",
                               std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()},
                              {"attempts", attempts}}
                   .dump()
            << "\n";
        return 0;
      }
      SSL_free(ssl);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  std::cerr << "kes-loadgen: no answer within " << timeout_s << "s\n";
  return 1;
}

int Run(const LoadConfig& config, bool json) {
  std::string error;
  SslCtxPtr ctx = MakeClientContext(config, &error);
  if (!ctx) {
    std::cerr << "kes-loadgen: " << error << "\n";
    return 2;
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(config.host, ec);
  if (ec) {
    std::cerr << "kes-loadgen: --host must be an IP address\n";
    return 2;
  }

  const int threads = std::max(1, config.threads);
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::vector<std::unique_ptr<LoadConnection>>> conns(threads);
  const auto start = Clock::now() + std::chrono::milliseconds(5);
  const auto begin = start + std::chrono::duration_cast<Clock::duration>(config.warmup);
  const auto end = begin + std::chrono::duration_cast<Clock::duration>(config.duration);
  const std::string request = BuildRequest(config);

  for (int t = 0; t < threads; t++) {
    ios.push_back(std::make_unique<asio::io_context>(1));
    auto w = std::make_unique<Worker>();
    w->config = &config;
    w->ssl_ctx = ctx.get();
    w->endpoint = {address, config.port};
    w->request = request;
    if (config.names > 0) {
      size_t at = request.find("{n}");
      w->request_head = request.substr(0, at);
      w->request_tail = at == std::string::npos ? "" : request.substr(at + 3);
    }
    w->window_begin = begin;
    w->window_end = end;
    w->budget = config.max_requests ? std::max<uint64_t>(1, config.max_requests / threads) : 0;
    workers.push_back(std::move(w));
  }
  for (int i = 0; i < config.connections; i++) {
    int t = i % threads;
    if (config.http2) {
      conns[t].push_back(std::make_unique<H2Connection>(*ios[t], *workers[t]));
    } else {
      conns[t].push_back(std::make_unique<Connection>(*ios[t], *workers[t], i, config.connections));
    }
  }

  const double cpu_before = CpuSeconds();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    pool.emplace_back([&, t] {
      asio::steady_timer stop(*ios[t]);
      stop.expires_at(end);
      stop.async_wait([&, t](const boost::system::error_code&) {
        workers[t]->stopping = true;
        ios[t]->stop();
      });
      for (auto& c : conns[t]) c->Start(start);
      ios[t]->run();
    });
  }
  for (auto& th : pool) th.join();
  const double elapsed_total = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_before;

  WorkerStats total;
  for (auto& w : workers) {
    const WorkerStats& s = w->stats;
    total.latency.Merge(s.latency);
    total.responses += s.responses;
    total.non_2xx += s.non_2xx;
    total.errors += s.errors;
    total.handshakes += s.handshakes;
    total.resumed += s.resumed;
    total.bytes_in += s.bytes_in;
    for (auto [k, v] : s.status_counts) total.status_counts[k] += v;
    if (total.first_error.empty()) total.first_error = s.first_error;
  }
  // With --requests the run may end before the window does.
  const double window = std::min(config.duration.count(),
                                 std::max(1e-9, elapsed_total - config.warmup.count() - 0.005));
  const double rps = total.responses / window;
  auto us = [&](double q) { return total.latency.Quantile(q) / 1000.0; };

  nlohmann::json out = {
      {"method", config.method},
      {"path", config.path},
      {"connections", config.connections},
      {"threads", threads},
      {"mode", config.http2 ? "h2"
               : config.new_connection
                   ? (config.resume ? "new-connection-resume" : "new-connection")
                   : "keep-alive"},
      {"streams_per_connection", config.http2 ? config.streams : 1},
      {"offered_rate", config.rate},
      {"duration_s", window},
      {"requests", total.responses},
      {"rps", rps},
      {"non_2xx", total.non_2xx},
      {"errors", total.errors},
      {"handshakes", total.handshakes},
      {"resumed_handshakes", total.resumed},
      {"bytes_in", total.bytes_in},
      {"client_cpu_s", cpu},
      {"latency_us",
       {{"p50", us(0.5)},
        {"p90", us(0.9)},
        {"p99", us(0.99)},
        {"p999", us(0.999)},
        {"max", total.latency.max() / 1000.0},
        {"mean", total.latency.mean() / 1000.0}}},
  };
  nlohmann::json codes = nlohmann::json::object();
  for (auto [k, v] : total.status_counts) codes[std::to_string(k)] = v;
  out["status"] = codes;
  if (!total.first_error.empty()) out["first_error"] = total.first_error;

  if (json) {
    std::cout << out.dump() << "\n";
  } else {
    std::printf("%s %s: %llu requests in %.2fs, %.0f req/s, %llu non-2xx, %llu errors\n",
                config.method.c_str(), config.path.c_str(),
                static_cast<unsigned long long>(total.responses), window, rps,
                static_cast<unsigned long long>(total.non_2xx),
                static_cast<unsigned long long>(total.errors));
    std::printf("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", us(0.5),
                us(0.9), us(0.99), us(0.999), total.latency.max() / 1000.0);
    std::printf("handshakes %llu (resumed %llu), client CPU %.2fs\n",
                static_cast<unsigned long long>(total.handshakes),
                static_cast<unsigned long long>(total.resumed), cpu);
    if (!total.first_error.empty()) std::printf("first error: %s\n", total.first_error.c_str());
  }
  return total.responses > 0 ? 0 : 1;
}

}  // namespace
}  // namespace kes::bench

int main(int argc, char** argv) {
  kes::bench::LoadConfig c;
  double warmup = 1, duration = 5;
  bool json = false;
  std::string body_file;
  CLI::App app{"kes-loadgen: HTTPS load generator for KES servers"};
  app.add_option("--host", c.host, "server IP address")->capture_default_str();
  app.add_option("--port", c.port, "server port")->required();
  app.add_option("-m,--method", c.method, "HTTP method")->capture_default_str();
  app.add_option("-p,--path", c.path, "request path")->capture_default_str();
  app.add_option("-b,--body", c.body, "request body");
  app.add_option("--body-file", body_file, "read the request body from a file");
  app.add_option("-H,--header", c.headers, "extra header line 'Name: value' (repeatable)");
  app.add_option("--cert", c.cert_file, "client certificate chain (PEM)");
  app.add_option("--key", c.key_file, "client private key (PEM); default: --cert");
  app.add_option("--api-key", c.api_key, "KES API key (kes:v1:...) instead of --cert/--key");
  app.add_flag("--tls13", c.tls13_only, "TLS 1.3 only");
  app.add_option("-c,--connections", c.connections, "concurrent connections")
      ->capture_default_str();
  app.add_option("-t,--threads", c.threads, "event-loop threads")->capture_default_str();
  app.add_option("-r,--rate", c.rate, "open loop: offered requests/s in total (0 = closed loop)");
  app.add_flag("--new-connection", c.new_connection, "one TCP+TLS handshake per request");
  app.add_flag("--resume", c.resume, "with --new-connection: resume the previous TLS session");
  app.add_flag("--h2", c.http2, "HTTP/2 (ALPN h2) instead of HTTP/1.1, closed loop");
  app.add_option("--streams", c.streams, "with --h2: requests in flight per connection")
      ->capture_default_str();
  app.add_option("-w,--warmup", warmup, "seconds before measuring")->capture_default_str();
  app.add_option("-d,--duration", duration, "seconds measured")->capture_default_str();
  app.add_option("-n,--requests", c.max_requests, "stop after this many measured responses");
  app.add_option("--names", c.names, "replace {n} in the path by 0..N-1, round robin");
  double first_response = 0;
  app.add_option("--first-response", first_response,
                 "poll until one request succeeds (timeout in s); print its Unix time in ns");
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);
  if (!body_file.empty()) {
    std::FILE* f = std::fopen(body_file.c_str(), "rb");
    if (!f) {
      std::cerr << "kes-loadgen: cannot read " << body_file << "\n";
      return 2;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) c.body.append(buf, n);
    std::fclose(f);
  }
  if (c.rate > 0 && c.new_connection) {
    std::cerr << "kes-loadgen: --rate and --new-connection cannot be combined\n";
    return 2;
  }
  if (c.http2 && (c.rate > 0 || c.new_connection)) {
    std::cerr << "kes-loadgen: --h2 measures keep-alive closed loop only (no --rate, "
                 "--new-connection)\n";
    return 2;
  }
  if (c.connections < 1 || c.streams < 1) return 2;
  if (first_response > 0) return kes::bench::FirstResponse(c, first_response);
  c.warmup = std::chrono::duration<double>(warmup);
  c.duration = std::chrono::duration<double>(duration);
  return kes::bench::Run(c, json);
}
