// `kes server`: flags, start-up sequence, banner, --dev, signals and reload
// (cli.md §3.2-3.3, config.md §5-6).
#include "server/server_command.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/time.h"
#include "common/version.h"
#include "config/config.h"
#include "crypto/encoding.h"
#include "crypto/key_version.h"
#include "identity/api_key.h"
#include "keystore/memory/memory_keystore.h"
#include "server/handlers.h"
#include "server/http_server.h"
#include "server/logs.h"
#include "server/process_setup.h"
#include "server/state.h"
#include "server/system_info.h"
#include "server/tls.h"

namespace kes::server {
namespace {

struct Flags {
  std::string config;
  std::string addr;
  bool dev = false;
  bool mlock = false;
  std::string key, cert, auth;
};

const char kUsage[] =
    "Usage:\n"
    "    kes server [options]\n"
    "\n"
    "Options:\n"
    "    --addr <[ip]:port>       The network interface the KES server will listen on.\n"
    "                             The default is '0.0.0.0:7373'.\n"
    "    --config <path>          Path to the KES server config file.\n"
    "    --dev                    Start the KES server in development mode. The server\n"
    "                             uses a volatile in-memory key store.\n"
    "    --mlock                  Lock all process memory (accepted for compatibility;\n"
    "                             memory is locked automatically).\n"
    "\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "  1. Start a new KES server on '127.0.0.1:7373' in development mode.\n"
    "     $ kes server --dev\n"
    "\n"
    "  2. Start a new KES server with a config file on '127.0.0.1:7000'.\n"
    "     $ kes server --addr :7000 --config ./kes/config.yml\n";

int Fail(const std::string& msg) {
  std::string line = "Error: " + msg;
  WriteLine(2, line);
  return 1;
}

// Parses the command line with the CLI's pflag-compatible FlagSet. Returns
// an exit code to stop with, or nullopt.
std::optional<int> ParseFlags(int argc, char** argv, Flags* f) {
  FlagSet fs(kUsage);
  std::string* config = fs.String("config");
  std::string* addr = fs.String("addr");
  std::string* key = fs.String("key");
  std::string* cert = fs.String("cert");
  std::string* auth = fs.String("auth");
  bool* dev = fs.Bool("dev");
  bool* mlock = fs.Bool("mlock");
  if (Status s = fs.Parse(std::vector<std::string>(argv + 1, argv + argc)); !s.ok()) {
    return Fail(s.message() + ". See 'kes server --help'");
  }
  if (fs.help()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (!fs.args().empty()) return Fail("too many arguments. See 'kes server --help'");
  f->config = *config;
  f->addr = *addr;
  f->key = *key;
  f->cert = *cert;
  f->auth = *auth;
  f->dev = *dev;
  f->mlock = *mlock;
  return std::nullopt;
}

// Splits "[ip]:port"; errors read like upstream's.
Status SplitAddress(const std::string& addr, std::string* ip, uint16_t* port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    return Status::Invalid("address " + addr + ": missing port in address");
  }
  std::string host = addr.substr(0, colon);
  std::string p = addr.substr(colon + 1);
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return Status::Invalid("address " + addr + ": too many colons in address");
  }
  if (!host.empty()) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(host, ec);
    if (ec) return Status::Invalid("'" + host + "' is not a valid IP address");
  }
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) {
    return Status::Invalid("address " + addr + ": invalid port");
  }
  *ip = host;
  *port = static_cast<uint16_t>(v);
  return Status::Ok();
}

bool IsUnspecified(const std::string& ip) { return ip.empty() || ip == "0.0.0.0" || ip == "::"; }

// Addresses for the banner (and the --dev certificate): the listen IP, or
// every usable interface address when listening on all interfaces.
Result<std::vector<std::string>> BannerAddresses(const std::string& ip) {
  if (!IsUnspecified(ip)) return std::vector<std::string>{ip};
  struct ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) != 0) return Status::Internal("no IPv4 or IPv6 addresses available");
  std::vector<std::string> v4, v6;
  for (auto* it = ifs; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || !(it->ifa_flags & IFF_UP)) continue;
    char buf[64];
    if (it->ifa_addr->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
      uint32_t a = ntohl(sin->sin_addr.s_addr);
      if ((a >> 16) == 0xa9fe || (a >> 28) == 0xe) continue;  // link-local, multicast
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
      if (std::find(v4.begin(), v4.end(), buf) == v4.end()) v4.push_back(buf);
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(it->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) || IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr)) {
        continue;
      }
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
      if (std::find(v6.begin(), v6.end(), buf) == v6.end()) v6.push_back(buf);
    }
  }
  freeifaddrs(ifs);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  return Status::Invalid("no IPv4 or IPv6 addresses available");
}

std::string Pad(std::string_view s, size_t n) {
  std::string out(s);
  if (out.size() < n) out.append(n - out.size(), ' ');
  return out;
}

bool IsHexIdentity(std::string_view id) {
  if (id.empty() || id.size() % 2 != 0) return false;
  return crypto::HexDecode(id).has_value();
}

struct BannerInfo {
  std::string kms;
  std::vector<std::string> urls;
  std::string api_key;  // --dev only
  std::string admin;
  int error_level = 0;
  int audit_level = 0;
  bool dev = false;
  bool mlocked = false;
};

std::string Banner(const BannerInfo& b) {
  // Non-terminal form of upstream's banner: labels padded to 33 columns,
  // continuation lines indented by 12.
  const std::string cont(12, ' ');
  auto line = [](std::string_view label, std::string_view value) {
    return Pad(label, 33) + " " + std::string(value) + "\n";
  };
  std::string out;
  out += line("Version", Pad(BuildVersion(), 23) + " commit=" + std::string(BuildCommit()));
  out += line("Runtime", Pad("c++20 " + std::string(GoOs()) + "/" + std::string(GoArch()), 23) +
                             " compiler=gcc-" + std::to_string(__GNUC__));
  // Upstream prints its own licence and copyright here; kes-cpp is a
  // separate code base, so it names itself instead (nothing parses the line).
  out += line("Project", Pad("kes-cpp", 23) + " drop-in replacement for MinIO KES");
  out += "\n";
  out += line("KMS", b.kms);
  for (size_t i = 0; i < b.urls.size(); ++i) {
    const std::string v = "· " + b.urls[i];
    out += i == 0 ? line("API", v) : cont + v + "\n";
  }
  out += "\n";
  out += line("Docs", "https://min.io/docs/kes");
  out += "\n";
  if (b.dev) out += line("API Key", b.api_key);
  out += line("Admin", IsHexIdentity(b.admin) ? b.admin : "<disabled>");
  out += line("Logs", "error=stderr level=" + config::LogLevelName(b.error_level));
  if (b.dev || b.audit_level <= config::kLevelInfo) {
    out += cont + "audit=stdout level=" + config::LogLevelName(b.audit_level) + "\n";
  }
  if (b.mlocked) out += line("MLock", "enabled");
  out += "\n=> Server is up and running...\n";
  return out;
}

void Print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

std::vector<std::string> UrlsOf(const std::vector<std::string>& ips, uint16_t port) {
  std::vector<std::string> urls;
  for (const auto& ip : ips) {
    const bool v6 = ip.find(':') != std::string::npos;
    urls.push_back("https://" + (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port));
  }
  return urls;
}

// A new snapshot from a config file: TLS and keystore (network and files
// are touched here), then policies and routes.
Result<std::shared_ptr<State>> BuildState(const config::ServerConfig& cfg,
                                          const std::string& created_at) {
  auto state = std::make_shared<State>();
  state->created_at = created_at;
  KES_ASSIGN_OR_RETURN(SslCtxPtr ctx, MakeServerTlsContext(cfg.tls, cfg.any_skip_auth()));
  state->tls = std::make_shared<boost::asio::ssl::context>(ctx.release());
  KES_ASSIGN_OR_RETURN(auto store, cfg.keystore->Connect());
  state->cache = std::make_shared<keystore::KeyCache>(std::move(store), cfg.cache.ToCacheOptions());
  state->log = cfg.log;
  ApplyRouteSettings(cfg.api, state.get());
  return state;
}

// Creates the config's declarative keys; "already exists" is fine.
Status CreateDeclaredKeys(const std::vector<std::string>& names, const State& state) {
  for (const auto& name : names) {
    KES_ASSIGN_OR_RETURN(auto kv, crypto::NewKeyVersion(crypto::DefaultKeyType(), state.admin));
    Status s = state.cache->Create(name, kv, kNoDeadline);
    if (!s.ok() && s.code() != Code::kAlreadyExists) return s;
  }
  return Status::Ok();
}

// Same policies, routes and keystore, new TLS context (periodic TLS reload).
std::shared_ptr<State> WithTls(const State& old, std::shared_ptr<boost::asio::ssl::context> tls) {
  auto s = std::make_shared<State>();
  s->admin = old.admin;
  s->policies = old.policies;
  for (const auto& [name, e] : s->policies) {
    for (const auto& id : e.identities) s->policy_of[id] = &e;
  }
  s->routes = old.routes;
  s->log = old.log;
  s->cache = old.cache;
  s->created_at = old.created_at;
  s->tls = std::move(tls);
  return s;
}

int ThreadCount() {
  SystemInfo sys = ReadSystemInfo();
  return std::max(1, sys.num_cpu_used);
}

// Locks all current and future pages in RAM so key material never reaches
// swap. MCL_ONFAULT locks pages as they are touched instead of faulting in
// every mapping (all of libcrypto, libprotobuf, thread stacks) at start-up:
// same guarantee, a fraction of the resident memory (docs/performance.md).
bool LockMemory() {
#ifdef MCL_ONFAULT
  if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0) return true;
#endif
  return mlockall(MCL_CURRENT | MCL_FUTURE) == 0;
}

// Small default thread stacks: coroutine frames live on the heap, and
// mlockall(MCL_FUTURE) would otherwise pin 8 MiB per thread.
void SetDefaultThreadStack() {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setstacksize(&attr, 2 << 20);
  pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
}

struct Runtime {
  Services services;
  StateHolder state;
  std::unique_ptr<boost::asio::thread_pool> workers;
  std::unique_ptr<HttpServer> http;
};

// Blocks SIGINT/SIGTERM/SIGHUP for every thread; the main thread waits for them.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void StopServer(Runtime& rt) {
  rt.http->Shutdown(std::chrono::milliseconds(1000));
  rt.workers->join();
  rt.http.reset();
  Print("\n=> Stopping server... Goodbye.\n");
}

int RunDev(const Flags& flags) {
  const std::string addr = flags.addr.empty() ? "0.0.0.0:7373" : flags.addr;
  std::string ip;
  uint16_t port = 0;
  if (Status s = SplitAddress(addr, &ip, &port); !s.ok()) return Fail(s.message());
  bool mlocked = false;
  if (flags.mlock) {
    mlocked = LockMemory();
    if (!mlocked) {
      WriteLine(2,
                std::string("WARNING: failed to lock memory (--mlock): ") + std::strerror(errno));
    }
  }
  const sigset_t sigs = BlockSignals();
  SetDefaultThreadStack();

  auto ips = BannerAddresses(ip);
  if (!ips.ok()) return Fail(ips.status().message());
  auto api_key = identity::APIKey::Generate();
  if (!api_key.ok()) return Fail(api_key.status().message());

  Runtime rt;
  auto state = std::make_shared<State>();
  state->created_at = Timestamp::NowLocal().ToRfc3339();
  state->admin = api_key->Identity();
  auto ctx = MakeDevTlsContext(*ips);
  if (!ctx.ok()) return Fail(ctx.status().message());
  state->tls = std::make_shared<boost::asio::ssl::context>(ctx->release());
  std::unique_ptr<keystore::KeyStore> store = keystore::NewMemoryKeyStore();
  keystore::CacheOptions opts;
  opts.expiry_any = std::chrono::minutes(5);
  opts.expiry_unused = std::chrono::seconds(30);
  opts.expiry_offline = std::chrono::nanoseconds(0);
  state->cache = std::make_shared<keystore::KeyCache>(std::move(store), opts);
  ApplyRouteSettings({}, state.get());
  const std::string kms = state->cache->DisplayName();
  rt.services.logs.SetLevels(config::kLevelInfo, true);
  rt.state.Store(state);

  rt.workers = std::make_unique<boost::asio::thread_pool>(std::max(4, 2 * ThreadCount()));
  rt.services.workers = rt.workers.get();
  rt.http = std::make_unique<HttpServer>(rt.services, rt.state);
  if (Status s = rt.http->Listen(ip, port); !s.ok()) return Fail(s.message());

  BannerInfo b;
  b.kms = kms;
  b.urls = UrlsOf(*ips, rt.http->port());
  b.api_key = api_key->String();
  b.admin = state->admin;
  b.dev = true;
  b.mlocked = mlocked;
  Print(Banner(b));
  Print("\n   Try: KES_SERVER=" + b.urls.front() + " KES_API_KEY=" + b.api_key +
        " kes key create my-key --insecure\n\n");

  rt.http->Start(ThreadCount());
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGHUP) {
      // --dev has no reload: the default action applies (termination).
      signal(SIGHUP, SIG_DFL);
      pthread_sigmask(SIG_UNBLOCK, &sigs, nullptr);
      raise(SIGHUP);
    }
    break;
  }
  StopServer(rt);
  return 0;
}

int RunWithConfig(const Flags& flags) {
  const bool mlocked = LockMemory();
  if (!mlocked && flags.mlock) {
    WriteLine(2, std::string("WARNING: failed to lock memory (--mlock): ") + std::strerror(errno));
  }
  if (flags.config.empty()) return Fail("open : no such file or directory");
  auto cfg = config::LoadConfigFile(flags.config);
  if (!cfg.ok()) return Fail(cfg.status().message());
  for (const auto& w : cfg->warnings) WriteLine(2, "WARNING: " + w);

  const std::string addr =
      !flags.addr.empty() ? flags.addr : (!cfg->address.empty() ? cfg->address : "0.0.0.0:7373");
  std::string ip;
  uint16_t port = 0;
  if (Status s = SplitAddress(addr, &ip, &port); !s.ok()) return Fail(s.message());
  auto ips = BannerAddresses(ip);
  if (!ips.ok()) return Fail(ips.status().message());

  const sigset_t sigs = BlockSignals();
  SetDefaultThreadStack();

  const std::string created_at = Timestamp::NowLocal().ToRfc3339();
  auto state = BuildState(*cfg, created_at);
  if (!state.ok()) return Fail(state.status().message());

  Runtime rt;
  rt.services.logs.SetLevels(cfg->log.error, cfg->log.audit_enabled());
  rt.workers = std::make_unique<boost::asio::thread_pool>(std::max(4, 2 * ThreadCount()));
  rt.services.workers = rt.workers.get();
  rt.http = std::make_unique<HttpServer>(rt.services, rt.state);
  if (Status s = rt.http->Listen(ip, port); !s.ok()) return Fail(s.message());
  const uint16_t bound_port = rt.http->port();

  BannerInfo b;
  b.kms = (*state)->cache->DisplayName();
  b.urls = UrlsOf(*ips, bound_port);
  b.admin = cfg->admin_identity;
  b.error_level = cfg->log.error;
  b.audit_level = cfg->log.audit;
  b.mlocked = mlocked;
  Print(Banner(b));

  if (Status s = ApplyPolicies(*cfg, state->get()); !s.ok()) return Fail(s.message());
  if (Status s = CreateDeclaredKeys(cfg->keys, **state); !s.ok()) return Fail(s.message());
  rt.state.Store(*state);
  rt.http->Start(ThreadCount());

  const struct timespec tls_reload = {time_t{15} * 60, 0};
  for (;;) {
    siginfo_t info;
    int sig = sigtimedwait(&sigs, &info, &tls_reload);
    if (sig < 0) {
      if (errno != EAGAIN) continue;
      // Every 15 minutes: re-read only the TLS settings.
      auto next = config::LoadConfigFile(flags.config);
      if (!next.ok()) {
        WriteLine(2, "Failed to reload TLS configuration: " + next.status().message());
        continue;
      }
      auto ctx = MakeServerTlsContext(next->tls, next->any_skip_auth());
      if (!ctx.ok()) {
        WriteLine(2, "Failed to update TLS configuration: " + ctx.status().message());
        continue;
      }
      rt.state.Store(
          WithTls(*rt.state.Load(), std::make_shared<boost::asio::ssl::context>(ctx->release())));
      continue;
    }
    if (sig != SIGHUP) break;

    WriteLine(2, "SIGHUP signal received. Reloading configuration...");
    auto next = config::LoadConfigFile(flags.config);
    if (!next.ok()) {
      WriteLine(2, "Failed to reload server config: " + next.status().message());
      continue;
    }
    auto fresh = BuildState(*next, created_at);
    Status s = fresh.ok() ? ApplyPolicies(*next, fresh->get()) : fresh.status();
    if (s.ok()) s = CreateDeclaredKeys(next->keys, **fresh);
    if (!s.ok()) {
      WriteLine(2, "Failed to update server configuration: " + s.message());
      continue;
    }
    rt.services.logs.SetLevels(next->log.error, next->log.audit_enabled());
    rt.state.Store(*fresh);
    BannerInfo nb = b;
    nb.kms = (*fresh)->cache->DisplayName();
    nb.admin = next->admin_identity;
    nb.error_level = next->log.error;
    nb.audit_level = next->log.audit;
    Print(Banner(nb) + "=> Reloading configuration after SIGHUP signal completed.\n");
  }
  StopServer(rt);
  if (mlocked) munlockall();
  return 0;
}

}  // namespace

int ServerMain(int argc, char** argv) {
  // A closed stdout/stderr pipe must not kill the server (sockets already
  // use MSG_NOSIGNAL); log writes then fail quietly.
  signal(SIGPIPE, SIG_IGN);
  HardenProcess();
  RaiseOpenFileLimit();
  Flags flags;
  if (auto rc = ParseFlags(argc, argv, &flags)) return *rc;
  // Deprecation warnings come first (cli.md §3.2).
  if (!flags.key.empty()) {
    WriteLine(2,
              "WARNING: '--key' flag is deprecated and no longer honored. Specify the private "
              "key in the config file");
  }
  if (!flags.cert.empty()) {
    WriteLine(2,
              "WARNING: '--cert' flag is deprecated and no longer honored. Specify the "
              "certificate  in the config file");
  }
  if (!flags.auth.empty()) {
    WriteLine(2,
              "WARNING: '--auth' flag is deprecated and no longer honored. Specify the client "
              "certificate verification in the config file");
  }
  if (flags.dev) {
    if (!flags.config.empty()) return Fail("'--config' flag is not supported in development mode");
    return RunDev(flags);
  }
  return RunWithConfig(flags);
}

}  // namespace kes::server
