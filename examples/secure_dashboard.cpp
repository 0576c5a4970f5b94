// SPDX-License-Identifier: Apache-2.0
// A live web dashboard of what a secure session receives: the last verified message per topic
// and a chart of numeric readings, rejected messages with their reasons, the connection's
// state, and Prometheus metrics. Takes secure_subscriber's flags, plus --http.
//
//   secure_dashboard -h localhost -p 8883 -t 'devices/#' -q 1
//     --cafile certs/out/ca.pem --cert certs/out/monitor.pem --key certs/out/monitor.key
//     --key-id device-1 --hmac-key device-1.hex --http 127.0.0.1:8080   (one command line)
//
// Serves / (the page, updated live by Server-Sent Events from /events), /api/state (its data as
// JSON) and /metrics (Prometheus). Prints "secure_dashboard: serving URL" once listening. Exit
// status: 0 on SIGINT/SIGTERM, 1 when its HTTP server stopped by itself (accept() failed), 2 bad
// usage, 3 bad configuration (an --http address it cannot listen on included). A broker it cannot
// reach is retried, the reason shown on the page.
#include "common/cli.hpp"
#include "dashboard/assets.hpp"
#include "dashboard/state.hpp"
#include "dashboard/web.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#ifndef SECUREMQTT_CHART_JS
#define SECUREMQTT_CHART_JS "/usr/share/javascript/chart.js/chart.min.js"  // Debian's libjs-chart.js
#endif

namespace {

std::atomic<bool> interrupted{false};
extern "C" void on_signal(int) { interrupted = true; }

struct DashboardFlags {
    dashboard::WebOptions web;
    std::string chart_js = SECUREMQTT_CHART_JS;
    bool chart_js_given = false;
};

void usage() {
    std::cout << "usage: secure_dashboard -t FILTER [-t FILTER...] [options]\n"
                 "  --http ADDR:PORT       where to serve the dashboard (default 127.0.0.1:8080;\n"
                 "                         [::1]:8080 for IPv6; port 0: any free port). It has no\n"
                 "                         login and no TLS: keep it on loopback, or behind a proxy\n"
                 "                         that adds both\n"
                 "  --allow-host NAME      also answer requests for host NAME (e.g. the proxy's\n"
                 "                         name); others are refused, against DNS rebinding\n"
                 "  --chart-js FILE        Chart.js to serve (default " SECUREMQTT_CHART_JS ")\n"
                 "  -h HOST -p PORT        broker (default localhost 8883)\n"
                 "  -t FILTER              topic filter to subscribe to (repeatable)\n"
                 "  -q QOS                 0, 1 or 2 (default 0)\n"
                 "  --max-age SECONDS      oldest acceptable message (default 300)\n"
                 "  --will-max-age FILTER=SECONDS  messages on topics matching FILTER may be this old\n"
                 "  --replay-store FILE|redis://HOST:PORT[/DB]  durable or shared replay state\n"
                 "  --replay-window N      counters a message may lag behind (default 1024)\n"
              << cli::session_usage() << cli::tls_usage();
}

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080" (resolved by the server library).
void parse_http(const std::string& value, dashboard::WebOptions& web) {
    const std::size_t colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) throw cli::UsageError("--http takes ADDR:PORT, got '" + value + "'");
    std::string host = value.substr(0, colon);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') throw cli::UsageError("--http: bad IPv6 address in '" + value + "'");
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
        throw cli::UsageError("--http: write an IPv6 address in brackets, e.g. [::1]:8080, got '" + value + "'");
    }
    const int port = cli::parse_int("--http", value.substr(colon + 1));
    if (port < 0 || port > 65535) throw cli::UsageError("--http: port must be 0 to 65535, got '" + value + "'");
    web.host = host;
    web.port = port;
}

bool loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw securemqtt::ConfigError("--chart-js '" + path + "': cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<dashboard::Asset> assets(const DashboardFlags& flags) {
    std::vector<dashboard::Asset> list = {
        {"/", "text/html; charset=utf-8", std::string(dashboard::assets::index_html)},
        {"/dashboard.js", "text/javascript; charset=utf-8", std::string(dashboard::assets::dashboard_js)},
        {"/dashboard.css", "text/css; charset=utf-8", std::string(dashboard::assets::dashboard_css)},
    };
    try {
        list.push_back({"/chart.js", "text/javascript; charset=utf-8", read_file(flags.chart_js)});
    } catch (const securemqtt::ConfigError&) {
        if (flags.chart_js_given) throw;
        // The page works without it (the chart says why it is missing).
        std::cerr << "secure_dashboard: warning: no chart: " << flags.chart_js
                  << " cannot be read (Debian: apt-get install libjs-chart.js, or give --chart-js FILE)\n";
    }
    return list;
}

// Connects, retrying with backoff until it works or the program is asked to end; the reason of
// each failure goes to the page and to stderr. (After the first connection the session
// reconnects by itself.)
bool connect_until_interrupted(securemqtt::SecureSession& session, dashboard::State& state) {
    std::chrono::seconds delay(1);
    while (!interrupted) {
        try {
            session.connect();
            return true;
        } catch (const securemqtt::ConnectionError& e) {
            const std::string why = std::string(e.what()) + " [" + std::string(securemqtt::to_string(e.reason())) + "]";
            std::cerr << "secure_dashboard: cannot connect (retrying in " << delay.count() << " s): " << why + "\n";
            state.set_connection("connecting", why);
        }
        const auto until = std::chrono::steady_clock::now() + delay;
        while (!interrupted && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        delay = std::min(delay * 2, std::chrono::seconds(30));
    }
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
#ifdef SIGPIPE
    std::signal(SIGPIPE, SIG_IGN);  // a browser closing its tab mid-write
#endif
    // The dashboard's own flags; the rest are secure_subscriber's (cli::parse).
    DashboardFlags flags;
    std::vector<char*> rest{argv[0]};
    std::string http_error;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            const bool takes_value = a == "--http" || a == "--allow-host" || a == "--chart-js";
            if (!takes_value) {
                rest.push_back(argv[i]);
                continue;
            }
            if (i + 1 >= argc) throw cli::UsageError(a + " needs a value");
            const std::string v = argv[++i];
            if (a == "--http") parse_http(v, flags.web);
            else if (a == "--allow-host") {
                if (v.empty()) throw cli::UsageError("--allow-host needs a host name");
                flags.web.allowed_hosts.push_back(v);
            }
            else {
                flags.chart_js = v;
                flags.chart_js_given = true;
            }
        }
    } catch (const cli::UsageError& e) {
        std::cerr << "secure_dashboard: " << e.what() << " (see --help)\n";
        return 2;
    }
    return cli::run("secure_dashboard", static_cast<int>(rest.size()), rest.data(), false, usage,
                    [&](const cli::Options& o) {
        if (o.count != 0 || o.wait_seconds != 0 || o.verbose || !o.format.empty() || o.kill_in_handler != 0) {
            throw cli::UsageError("-C, -W, -v, -F and --kill-in-handler are secure_subscriber's, not the dashboard's");
        }
        if (!loopback(flags.web.host)) {
            // Browsers send Fetch Metadata (Sec-Fetch-Site) only to loopback or HTTPS: on a plain-HTTP
            // network address, other sites' no-cors GETs are told apart by Origin only, when sent.
            std::cerr << "secure_dashboard: warning: serving on " << flags.web.host
                      << ", beyond loopback, with no login and no TLS: anyone who can reach it sees what arrives\n";
        }
        dashboard::State state{dashboard::Limits{}};  // outlives the session and the server using it
        securemqtt::SecureSession session(cli::session_options(o));
        state.set_stats_source([&session] { return session.stats(); });
        session.on_rejected([&state](std::string_view topic, securemqtt::RejectReason reason) {
            state.add_rejected(topic, reason);
        });
        session.on_event([&state](const securemqtt::SessionEvent& e) {
            using T = securemqtt::SessionEventType;
            switch (e.type) {
            case T::connected: state.set_connection("connected", e.detail); break;
            case T::connection_lost: state.set_connection("disconnected", e.detail); break;
            case T::reconnecting:
                state.set_connection("reconnecting", "attempt " + std::to_string(e.attempt) +
                                                         (e.detail.empty() ? "" : ": " + e.detail));
                break;
            case T::disconnected: state.set_connection("disconnected", e.detail); break;
            }
        });
        for (const auto& t : o.topics) {
            session.subscribe(t, o.qos, [&state](const securemqtt::Message& m) { state.add_verified(m); });
        }
        dashboard::Web web(
            state, [&session] { return securemqtt::SessionMetrics{session.stats(), session.is_connected(), {}}; },
            assets(flags), flags.web);
        std::string url;
        try {
            url = web.start();
        } catch (const std::runtime_error& e) {
            throw securemqtt::ConfigError(e.what());
        }
        std::cout << "secure_dashboard: serving " << url << std::endl;
        if (connect_until_interrupted(session, state)) {
            while (!interrupted && !web.failed()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        const bool web_stopped = web.stop();
        session.disconnect();
        const securemqtt::SessionStats st = session.stats();
        std::cerr << "secure_dashboard: " + std::to_string(st.verified) + " verified, " + std::to_string(st.rejected) +
                         " rejected\n";
        if (web.failed()) {
            std::cerr << "secure_dashboard: the HTTP server stopped accepting connections (out of descriptors?)\n";
            return 1;
        }
        if (!web_stopped) {
            // An HTTP client still holds a worker (see Web::stop): the session is closed cleanly,
            // and the process ends without waiting for that client.
            std::cerr << "secure_dashboard: HTTP connections still open at exit\n";
            std::cout.flush();
            std::_Exit(0);
        }
        return 0;
    });
}
