// SPDX-License-Identifier: Apache-2.0
// secure_dashboard's HTTP side (cpp-httplib): the page and its assets, /api/state, /events
// (Server-Sent Events) and /metrics. Serves on the address it is given only; refuses requests
// naming another host (DNS rebinding) and sends headers that keep received content inert.
#pragma once

#include "dashboard/state.hpp"

#include <securemqtt/metrics.hpp>

#include <httplib.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dashboard {

/// A file the program serves, with its media type.
struct Asset {
    std::string path;  ///< e.g. "/dashboard.js"
    std::string content_type;
    std::string body;
};

struct WebOptions {
    std::string host = "127.0.0.1";  ///< an address literal: IPv4, or IPv6 without brackets
    int port = 8080;                 ///< 0: any free port
    std::vector<std::string> allowed_hosts;  ///< further Host header names accepted (--allow-host)
    std::size_t max_live_streams = 8;        ///< open /events streams at once
};

// httplib's ThreadPool queues accepted connections without limit, so a crowd of idle or
// trickling clients would pile up file descriptors (which the MQTT session needs too) and memory.
// Here the accepting thread waits while `max_pending` connections are queued, leaving the rest in
// the kernel's backlog. Once stopped, queued connections are not served (their sockets are left
// to the process's exit).
class BoundedPool : public httplib::TaskQueue {
public:
    BoundedPool(std::size_t workers, std::size_t max_pending) : max_pending_(max_pending) {
        for (std::size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    }

    void enqueue(std::function<void()> fn) override {
        std::unique_lock<std::mutex> lock(mutex_);
        room_.wait(lock, [this] { return jobs_.size() < max_pending_ || stopped_; });
        if (stopped_) return;
        jobs_.push_back(std::move(fn));
        ready_.notify_one();
    }

    /// Wakes an accepting thread waiting for room, and lets the workers end after their job.
    void stop_accepting() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopped_ = true;
        }
        room_.notify_all();
        ready_.notify_all();
    }

    void shutdown() override {
        stop_accepting();
        for (std::thread& t : threads_) t.join();
    }

private:
    void work() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                ready_.wait(lock, [this] { return !jobs_.empty() || stopped_; });
                if (stopped_) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            room_.notify_one();
            job();
        }
    }

    const std::size_t max_pending_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::condition_variable room_;
    std::deque<std::function<void()>> jobs_;
    bool stopped_ = false;
    std::vector<std::thread> threads_;
};

// What httplib owns (and deletes): a view of the Web's own pool, which outlives its listening thread.
class PoolView : public httplib::TaskQueue {
public:
    explicit PoolView(BoundedPool& pool) : pool_(pool) {}
    void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
    void shutdown() override { pool_.shutdown(); }

private:
    BoundedPool& pool_;
};

inline std::string lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

class Web {
public:
    Web(State& state, std::function<securemqtt::SessionMetrics()> metrics, std::vector<Asset> assets,
        WebOptions options)
        : state_(state), metrics_(std::move(metrics)), assets_(std::move(assets)), options_(std::move(options)) {
        server_.new_task_queue = [this] { return new PoolView(*pool_); };  // made in start()
        server_.set_payload_max_length(4096);  // nothing here takes a body (refused before reading one)
        // One request per connection: httplib keeps a connection open after a refusal whatever the
        // handler says, and would read a refused request's body as the next request.
        server_.set_keep_alive_max_count(1);
        server_.set_default_headers({
            // Received content is only ever set as text, and the page runs only its own script.
            {"Content-Security-Policy",
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'"},
            {"X-Content-Type-Options", "nosniff"},
            {"Referrer-Policy", "no-referrer"},
            {"X-Frame-Options", "DENY"},
            {"Cross-Origin-Resource-Policy", "same-origin"},
            {"Cross-Origin-Opener-Policy", "same-origin"},
            {"Cache-Control", "no-store"},
        });
        server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            const auto refuse = [&res](int status, const char* why) {
                res.status = status;
                res.set_header("Connection", "close");
                res.set_content(why, "text/plain");
                return httplib::Server::HandlerResponse::Handled;
            };
            // DNS rebinding: a page elsewhere whose name resolves to this address.
            if (!host_allowed(req.get_header_value("Host"))) {
                return refuse(403, "this dashboard answers only to its own address (see --allow-host)\n");
            }
            // Read-only: refused here, a request's body is never read (httplib would read any size).
            if (req.method != "GET" && req.method != "HEAD") {
                res.set_header("Allow", "GET, HEAD");
                return refuse(405, "only GET and HEAD here\n");
            }
            if (req.has_header("Transfer-Encoding") ||
                (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0")) {
                return refuse(400, "a request here has no body\n");
            }
            // Another site's page in the operator's browser may send requests here (holding the live
            // streams, asking for state): only the page itself, typed addresses, and scrapers.
            if (!same_site(req)) return refuse(403, "requests from other sites are refused\n");
            return httplib::Server::HandlerResponse::Unhandled;
        });
        route();
    }

    /// A server that would not stop (see stop()) ends the process: its threads still use this.
    ~Web() {
        if (!stop()) {
            std::cerr << "secure_dashboard: HTTP connections still open at exit\n";
            std::_Exit(1);
        }
    }
    Web(const Web&) = delete;
    Web& operator=(const Web&) = delete;

    /// Binds (throws std::runtime_error naming the address) and serves on a thread of its own.
    /// Returns the URL of the page.
    std::string start() {
        int port = options_.port;
        if (port == 0) {
            port = server_.bind_to_any_port(options_.host);
            if (port <= 0) throw std::runtime_error("--http " + display_host() + ":0: cannot bind a port");
        } else if (!server_.bind_to_port(options_.host, port)) {
            throw std::runtime_error("--http " + display_host() + ":" + std::to_string(port) +
                                     ": cannot listen there (in use, or not an address of this machine)");
        }
        const std::string suffix = ":" + std::to_string(port);
        for (const std::string& name : {display_host(), std::string("localhost"), std::string("127.0.0.1"),
                                       std::string("[::1]")}) {
            allowed_.insert(lower(name) + suffix);
        }
        for (const std::string& name : options_.allowed_hosts) {
            allowed_.insert(lower(name));
            allowed_.insert(lower(name) + suffix);
        }
        if (port == 80) {  // browsers leave the default port out of Host
            for (const std::string& name : {display_host(), std::string("localhost"), std::string("127.0.0.1"),
                                           std::string("[::1]")}) {
                allowed_.insert(lower(name));
            }
        }
        // Each open /events stream holds a worker: room for them and for ordinary requests.
        const std::size_t workers = options_.max_live_streams + 4;
        pool_ = std::make_unique<BoundedPool>(workers, 4 * workers);  // std::system_error: no threads
        thread_ = std::thread([this] {
            const bool ended_well = server_.listen_after_bind() || stopping_;
            std::lock_guard<std::mutex> lock(pause_mutex_);
            failed_ = !ended_well;  // accept() failed (e.g. out of descriptors): nothing is served any more
            listening_done_ = true;
            pause_.notify_all();
        });
        // httplib's stop() does nothing before the server runs: wait for that (or for its end).
        std::unique_lock<std::mutex> lock(pause_mutex_);
        while (!server_.is_running() && !listening_done_) pause_.wait_for(lock, std::chrono::milliseconds(1));
        return "http://" + display_host() + suffix + "/";
    }

    /// Ends the open streams and the server, and waits for its threads: false when they have not
    /// ended within 5 s (a client trickling a request byte by byte holds its worker; httplib
    /// cannot cut it off), so this object must outlive the process (std::_Exit).
    bool stop() {
        if (stopping_.exchange(true)) return stopped_;
        state_.wake_all();
        if (pool_) pool_->stop_accepting();
        server_.stop();
        std::unique_lock<std::mutex> lock(pause_mutex_);
        pause_.notify_all();
        if (!thread_.joinable()) return stopped_ = true;
        if (!pause_.wait_for(lock, std::chrono::seconds(5), [this] { return listening_done_; })) return stopped_ = false;
        lock.unlock();
        thread_.join();
        return stopped_ = true;
    }

    /// True when the server ended by itself (accept() failed): the program should end too.
    bool failed() const {
        std::lock_guard<std::mutex> lock(pause_mutex_);
        return failed_;
    }

private:
    std::string display_host() const {
        return options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host;
    }

    bool host_allowed(const std::string& host) const { return !host.empty() && allowed_.count(lower(host)) > 0; }

    // Fetch metadata and Origin, where the browser sends them: same origin, or typed/bookmarked
    // (Sec-Fetch-Site: none); a link from elsewhere may open the page itself, nothing more.
    // Clients that send neither (curl, Prometheus) are not browsers carrying another site's intent.
    bool same_site(const httplib::Request& req) const {
        const std::string site = req.get_header_value("Sec-Fetch-Site");
        if (!site.empty() && site != "same-origin" && site != "none") {
            const bool navigation = req.path == "/" && req.get_header_value("Sec-Fetch-Mode") == "navigate";
            if (!navigation) return false;
        }
        const std::string origin = req.get_header_value("Origin");
        return origin.empty() || (origin.rfind("http://", 0) == 0 && host_allowed(origin.substr(7)));
    }

    void route() {
        for (const Asset& asset : assets_) {  // assets_ is const: the references stay valid
            server_.Get(asset.path, [&asset](const httplib::Request&, httplib::Response& res) {
                res.set_content(asset.body, asset.content_type);
            });
        }
        // Browsers ask for it on their own; "nothing" keeps their console free of a 404.
        server_.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
        server_.Get("/api/state", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(json_text(state_.snapshot()), "application/json");
        });
        server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(securemqtt::to_prometheus({metrics_()}), std::string(securemqtt::prometheus_content_type));
        });
        server_.Get("/events", [this](const httplib::Request&, httplib::Response& res) { events(res); });
    }

    static std::string json_text(const nlohmann::json& j) {
        // Every string was made UTF-8 on the way in; `replace` keeps a slip from ending the stream.
        return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    // Server-Sent Events: the whole state first, then what changed, at most four times a second
    // (a flood coalesces into a few updates), and a comment line after 5 s without one.
    void events(httplib::Response& res) {
        if (live_.fetch_add(1) >= options_.max_live_streams) {
            live_.fetch_sub(1);
            res.status = 503;
            res.set_content("too many live views open\n", "text/plain");
            return;
        }
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, cursor = std::uint64_t{0}, last_stats = std::string(), last_write = std::chrono::steady_clock::time_point()](
                std::size_t, httplib::DataSink& sink) mutable {
              // httplib calls this outside its own exception handling: an exception would end the process.
              try {
                while (!stopping_) {
                    nlohmann::json update = state_.snapshot(cursor);
                    const std::uint64_t seq = update["seq"].get<std::uint64_t>();
                    std::string stats = update["stats"].dump();
                    const auto now = std::chrono::steady_clock::now();
                    // Counters can move after the change that woke us (the session counts a message
                    // after its handler returns): an update goes out when they do, too.
                    if (seq != cursor || stats != last_stats || cursor == 0) {
                        const std::string event = "data: " + json_text(update) + "\n\n";
                        if (!sink.write(event.data(), event.size())) return false;
                        cursor = seq;
                        last_stats = std::move(stats);
                        last_write = now;
                        pause(std::chrono::milliseconds(250));
                    } else if (now - last_write >= std::chrono::seconds(5)) {
                        // A comment line: finds a closed page (its stream slot freed) and keeps
                        // idle proxies from cutting the stream.
                        if (!sink.write(":\n\n", 3)) return false;
                        last_write = now;
                    }
                    state_.wait_for_change(cursor, std::chrono::seconds(1));
                }
                sink.done();
                return true;
              } catch (const std::exception&) {
                return false;  // e.g. bad_alloc: this stream ends, the page reconnects
              }
            },
            [this](bool) { live_.fetch_sub(1); });
    }

    void pause(std::chrono::milliseconds how_long) {
        std::unique_lock<std::mutex> lock(pause_mutex_);
        pause_.wait_for(lock, how_long, [this] { return stopping_.load(); });
    }

    State& state_;
    std::function<securemqtt::SessionMetrics()> metrics_;
    const std::vector<Asset> assets_;
    const WebOptions options_;
    std::set<std::string> allowed_;
    httplib::Server server_;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    bool stopped_ = false;
    bool listening_done_ = false;  // guarded by pause_mutex_
    bool failed_ = false;          // guarded by pause_mutex_
    std::unique_ptr<BoundedPool> pool_;  // made by start(); httplib's task queue is a view of it
    std::atomic<std::size_t> live_{0};
    mutable std::mutex pause_mutex_;
    std::condition_variable pause_;
};

}  // namespace dashboard
