// Offload: runs a keystore call on the worker pool and resumes the calling
// coroutine on its own executor with the result. It is the barrier between
// the handlers and the keystores: an exception thrown by a keystore (a
// library's, or bad_alloc) becomes an error Status here, because on the
// pool it would reach Boost's thread_pool and std::terminate the server.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace kes::server {

// `f` returns a Status or a Result<T>.
template <typename F>
boost::asio::awaitable<std::invoke_result_t<F>> Offload(boost::asio::thread_pool& pool, F f) {
  namespace asio = boost::asio;
  using R = std::invoke_result_t<F>;
  std::optional<R> out;
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&](auto handler) {
        auto ex = asio::get_associated_executor(handler);
        asio::post(pool, [&out, &f, ex, handler = std::move(handler)]() mutable {
          try {
            out.emplace(f());
          } catch (const std::exception& e) {
            out.emplace(Status::Unavailable(std::string("kes: keystore error: ") + e.what()));
          } catch (...) {
            out.emplace(Status::Unavailable("kes: keystore error"));
          }
          asio::post(ex, std::move(handler));
        });
      },
      asio::use_awaitable);
  co_return std::move(*out);
}

}  // namespace kes::server
